// wasm_bench_page.mjs - the WebAssembly benchmark tasks (bench/README.md, "WebAssembly"), the SAME code in
// node and in Chromium:
//   * node: bench/wasm_bench.mjs imports runTask() and runs each task in a fresh child process;
//   * Chromium: bench/wasm_bench.html loads this file; window.__run(task) starts it as a module Worker
//     (a fresh one per task, like the page's own EmbedtuneWorker) and resolves with the result.
// Tasks (all timings are wall clock, performance.now()):
//   {kind:'peak', threads}                    f32x4 mul+add peak (bench/simd_peak.c), best of many short runs
//   {kind:'et', threads, shapes:[[B,T],...]}  embedtune wasm: Embedtune.load(files) -> encode(texts, {batch B, maxLength T})
//                                             (int8: true -> encode(..., {int8: true}): int8 inference, docs/int8.md)
//   {kind:'ort', threads, shapes}             onnxruntime-web (wasm backend, numThreads t) on model.onnx, same shapes
//   {kind:'train', threads, model, epochs, batch, maxLenQ, maxLenD, lr}  Embedtune trainBegin/trainRun, one epoch
// env (what differs between node and the page): {urls: {embedtune, ort, ortWasmDir, peakDir}, bytes(rel) -> Uint8Array}
// where rel is 'minilm/config.json', 'compact2/vocab.txt', 'pairs1000.jsonl', ... (the data folder).
const isNode = typeof process !== 'undefined' && !!(process.versions && process.versions.node) &&
  typeof window === 'undefined' && typeof WorkerGlobalScope === 'undefined';
const now = () => performance.now();
const median = (v) => { const s = [...v].sort((p, q) => p - q); const n = s.length;
  return n % 2 ? s[(n - 1) / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]); };

// xorshift32, identical to bench/ort_encode.mjs, torch_encode.py and bench_encode.c
function benchIds(batch, seq, vocab, seed = 12345) {
  let x = seed >>> 0;
  const out = new BigInt64Array(batch * seq);
  for (let i = 0; i < batch * seq; i++) {
    x = (x ^ (x << 13)) >>> 0; x = (x ^ (x >>> 17)) >>> 0; x = (x ^ (x << 5)) >>> 0;
    out[i] = BigInt(1000 + (x % (vocab - 1000)));
  }
  return out;
}

/** Forward FLOPs of a BERT encoder on B x T tokens (matmuls and attention; LN/GELU/softmax not counted). */
export function encodeFlops(cfg, B, T) {
  const C = cfg.hidden_size, I = cfg.intermediate_size, L = cfg.num_hidden_layers;
  return L * B * T * (2 * 4 * C * C + 2 * 2 * C * I + 2 * 2 * T * C);
}

/** Texts of whole-word vocab tokens, long enough to be truncated to exactly maxLength tokens. */
function benchTexts(vocabText, n, words, seed = 4242) {
  const vocab = vocabText.split('\n').filter((w) => /^[a-z]{3,12}$/.test(w));
  let x = seed >>> 0;
  const texts = [];
  for (let i = 0; i < n; i++) {
    const w = [];
    for (let j = 0; j < words; j++) {
      x = (x ^ (x << 13)) >>> 0; x = (x ^ (x >>> 17)) >>> 0; x = (x ^ (x << 5)) >>> 0;
      w.push(vocab[x % vocab.length]);
    }
    texts.push(w.join(' '));
  }
  return texts;
}

async function timeLoop(fn, { warmup = 2, reps = 3, minTime = 2, maxTime = 60 } = {}) {
  for (let i = 0; i < warmup; i++) await fn();
  const times = [];
  const t0 = now();
  while (times.length < reps || ((now() - t0) / 1e3 < minTime && (now() - t0) / 1e3 < maxTime)) {
    const t = now();
    await fn();
    times.push((now() - t) / 1e3);
  }
  return { times_s: times, best_s: Math.min(...times), median_s: median(times) };
}

async function nodeShim(dir) { // Emscripten 3.1.6 ES6 glue in node (docs/wasm-build.md)
  const { createRequire } = await import('node:module');
  globalThis.require ??= createRequire(import.meta.url);
  globalThis.__dirname ??= dir;
}

async function taskPeak(task, env) {
  const t = task.threads;
  const variant = t > 1 ? 'simd_peak' : 'simd_peak-st';
  const base = env.urls.peakDir;
  const arg = {};
  if (isNode) {
    const { readFileSync } = await import('node:fs');
    const { fileURLToPath } = await import('node:url');
    const dir = fileURLToPath(base);
    await nodeShim(dir);
    arg.wasmBinary = readFileSync(new URL(`${variant}.wasm`, base));
    arg.locateFile = (p) => dir + p;
  } else {
    arg.locateFile = (p) => new URL(p, base).href;
  }
  const { default: create } = await import(new URL(`${variant}.mjs`, base).href);
  const M = await create(arg);
  const acc = M._et_simd_peak_acc();
  const iters = task.iters || 2e6;            // ~0.05 s per thread per run at ~38 GFLOP/s
  const flops = t * iters * acc * 8;
  const gfs = [];
  M._et_simd_peak_run(t, iters);              // warm-up (tier-up to the optimizing compiler)
  const t0 = now();
  while (gfs.length < 5 || (now() - t0) < (task.minTime ?? 1.5) * 1e3) {
    const s = M._et_simd_peak_run(t, iters);
    if (s < 0) throw new Error(`simd_peak: could not start ${t} threads`);
    gfs.push(flops / s / 1e9);
  }
  if (M.PThread) M.PThread.terminateAllThreads();
  return { engine: 'peak', threads: t, acc, gflops_best: Math.max(...gfs), gflops_median: median(gfs), runs: gfs.length };
}

async function taskEt(task, env) {
  const { Embedtune, shutdown } = await import(env.urls.embedtune);
  const mdl = task.model || 'minilm';
  const get = (f) => env.bytes(`${mdl}/${f}`);
  const files = { config: await get('config.json'), vocab: await get('vocab.txt'), safetensors: await get('model.safetensors'),
    modules: await get('modules.json'), pooling: await get('1_Pooling/config.json'), tokenizerConfig: await get('tokenizer_config.json') };
  const cfg = JSON.parse(new TextDecoder().decode(files.config));
  const vocabText = new TextDecoder().decode(files.vocab);
  const m = await Embedtune.load(files, { threads: task.threads });
  const out = [];
  for (const [B, T] of task.shapes) {
    const texts = benchTexts(vocabText, B, T + 40);
    const toks = m.tokenize(texts[0]).length;
    if (toks < T - 2) throw new Error(`bench text has ${toks} tokens, wanted >= ${T - 2}`);
    let emb;
    const r = await timeLoop(() => { emb = m.encode(texts, { batch: B, maxLength: T, int8: !!task.int8 }); }, task.timing);
    let checksum = 0;
    for (const v of emb) checksum += v;
    out.push({ batch: B, seq: T, ...r, sps_best: B / r.best_s, sps_median: B / r.median_s,
      gflops_best: encodeFlops(cfg, B, T) / r.best_s / 1e9, checksum });
  }
  const info = m.info;
  m.dispose();
  await shutdown();
  return { engine: task.int8 ? 'embedtune-int8' : 'embedtune', threads: task.threads, actualThreads: info.threads, simd: info.simd,
    shapes: out };
}

async function taskOrt(task, env) {
  const ort = await import(env.urls.ort);
  ort.env.wasm.numThreads = task.threads;
  ort.env.wasm.simd = true;
  if (env.urls.ortWasmDir) ort.env.wasm.wasmPaths = env.urls.ortWasmDir;
  const mdl = task.model || 'minilm';
  const cfg = JSON.parse(new TextDecoder().decode(await env.bytes(`${mdl}/config.json`)));
  const session = await ort.InferenceSession.create(await env.bytes(`${mdl}/model.onnx`), {
    executionProviders: ['wasm'], graphOptimizationLevel: 'all', executionMode: 'sequential',
  });
  const out = [];
  for (const [B, T] of task.shapes) {
    const feeds = { input_ids: new ort.Tensor('int64', benchIds(B, T, cfg.vocab_size), [B, T]),
      attention_mask: new ort.Tensor('int64', new BigInt64Array(B * T).fill(1n), [B, T]) };
    let res;
    const r = await timeLoop(async () => { res = await session.run(feeds); }, task.timing);
    let checksum = 0;
    for (const v of res.sentence_embedding.data) checksum += v;
    out.push({ batch: B, seq: T, ...r, sps_best: B / r.best_s, sps_median: B / r.median_s,
      gflops_best: encodeFlops(cfg, B, T) / r.best_s / 1e9, checksum });
  }
  await session.release?.();
  return { engine: 'ort', version: ort.env.versions?.web ?? ort.env.versions?.common ?? '', threads: task.threads,
    crossOriginIsolated: typeof crossOriginIsolated === 'undefined' ? null : crossOriginIsolated, shapes: out };
}

async function taskTrain(task, env) {
  const { Embedtune, shutdown } = await import(env.urls.embedtune);
  const mdl = task.model || 'compact2';
  const get = (f) => env.bytes(`${mdl}/${f}`);
  const files = { config: await get('config.json'), vocab: await get('vocab.txt'), safetensors: await get('model.safetensors'),
    modules: await get('modules.json'), pooling: await get('1_Pooling/config.json'), tokenizerConfig: await get('tokenizer_config.json') };
  let jsonl;
  if (task.synthetic) { // MiniLM train-step shape: every query >= maxLenQ tokens, every document >= maxLenD tokens
    const voc = new TextDecoder().decode(files.vocab);
    const n = task.synthetic.pairs, q = benchTexts(voc, n, (task.maxLenQ || 32) + 8, 777), d = benchTexts(voc, n, (task.maxLenD || 128) + 8, 999);
    jsonl = q.map((x, i) => JSON.stringify({ query: x, positive: d[i] })).join('\n') + '\n';
  } else jsonl = await env.bytes(task.data || 'pairs1000.jsonl');
  const m = await Embedtune.load(files, { threads: task.threads });
  const cfg = { loss: task.loss || 'infonce', epochs: task.epochs || 1, batch: task.batch || 16, lr: task.lr || 1e-4,
    maxLenQ: task.maxLenQ || 64, maxLenD: task.maxLenD || 128, seed: 42 };
  const t0 = now();
  const info = m.trainBegin(jsonl, cfg);
  const tBegin = now();
  let last = null, firstLoss = null, st = info, steps = 0;
  const stepTimes = [];
  let ts = now();
  while (!st.done) {
    st = m.trainRun(task.chunk || 1, (s) => { last = s; if (firstLoss === null) firstLoss = s.loss; });
    const t = now();
    stepTimes.push((t - ts) / 1e3);
    ts = t;
    if (++steps > 1e6 || (task.maxSteps && st.step >= task.maxSteps)) break;
  }
  const t1 = now();
  m.trainEnd();
  m.dispose();
  await shutdown();
  const total = (t1 - t0) / 1e3;
  return { engine: 'train', model: mdl, threads: task.threads, examples: info.examples, steps: st.step, totalSteps: info.totalSteps,
    cfg, begin_s: (tBegin - t0) / 1e3, epoch_s: total, examples_per_s: info.examples * (st.step / info.totalSteps) / total,
    step_best_s: Math.min(...stepTimes), step_median_s: median(stepTimes), loss_first: firstLoss, loss_last: last && last.loss };
}

export async function runTask(task, env) {
  const t0 = now();
  let r;
  if (task.kind === 'peak') r = await taskPeak(task, env);
  else if (task.kind === 'et') r = await taskEt(task, env);
  else if (task.kind === 'ort') r = await taskOrt(task, env);
  else if (task.kind === 'train') r = await taskTrain(task, env);
  else throw new Error(`unknown task kind ${task.kind}`);
  r.task_s = (now() - t0) / 1e3;
  return r;
}

// ------------------------------------------------------------------------------------------ browser
const inWorker = typeof WorkerGlobalScope !== 'undefined' && typeof self !== 'undefined' && self instanceof WorkerGlobalScope;
if (!isNode && inWorker) {
  const origin = self.location.origin;
  const env = {
    urls: { embedtune: `${origin}/wasm/embedtune.mjs`, ort: `${origin}/ort/ort.wasm.min.mjs`, ortWasmDir: `${origin}/ort/`,
      peakDir: `${origin}/peak/` },
    bytes: async (rel) => {
      const r = await fetch(`${origin}/data/${rel}`);
      if (!r.ok) throw new Error(`${rel}: HTTP ${r.status}`);
      return new Uint8Array(await r.arrayBuffer());
    },
  };
  self.onmessage = async (ev) => {
    try { self.postMessage({ ok: true, result: await runTask(ev.data, env) }); }
    catch (e) { self.postMessage({ ok: false, error: String(e && e.stack || e) }); }
  };
} else if (!isNode && typeof window !== 'undefined') {
  window.__run = (task) => new Promise((resolve, reject) => {
    const w = new Worker(import.meta.url, { type: 'module' });
    w.onmessage = (ev) => { w.terminate(); if (ev.data.ok) resolve(ev.data.result); else reject(new Error(ev.data.error)); };
    w.onerror = (ev) => { w.terminate(); reject(new Error(ev.message || 'worker error')); };
    w.postMessage(task);
  });
  window.__ready = { crossOriginIsolated, hardwareConcurrency: navigator.hardwareConcurrency, userAgent: navigator.userAgent };
  const el = document.getElementById('status');
  if (el) el.textContent = `ready (crossOriginIsolated ${crossOriginIsolated})`;
}
