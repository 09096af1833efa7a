// ort_reallen.mjs - onnxruntime-node side of the real-length encode benchmark (bench/run_reallen_bench.sh).
//
//   node bench/ort_reallen.mjs --model DIR --ids FILE --threads 2 [--batch 32] [--warmup BATCHES] [--reps 1]
//                              [--emb-out FILE.f32]
// Encodes every line of the ids file (bench_reallen --make-ids) with DIR/model.onnx (intraOpNumThreads t,
// interOpNumThreads 1, graph optimization 'all', sequential) as sentence-transformers does: sorted by
// length, batches of --batch, each padded to its own longest text with the mask (dynamic padding). Times
// whole passes; one JSON line with per-pass seconds and peak RSS; --emb-out writes the embeddings in file
// order (float32) for the runner's cross-engine check.
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import ort from 'onnxruntime-node';

const a = { model: '/tmp/et-bench/minilm', ids: '', threads: 2, batch: 32, warmup: 2, reps: 1, embOut: '' };
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  const k = argv[i];
  const next = () => { if (i + 1 >= argv.length) throw new Error(`${k}: missing value`); return argv[++i]; };
  if (k === '--model') a.model = next();
  else if (k === '--ids') a.ids = next();
  else if (k === '--threads') a.threads = +next();
  else if (k === '--batch') a.batch = +next();
  else if (k === '--warmup') a.warmup = +next();
  else if (k === '--reps') a.reps = +next();
  else if (k === '--emb-out') a.embOut = next();
  else throw new Error(`unknown option ${k}`);
}
const cfg = JSON.parse(readFileSync(path.join(a.model, 'config.json'), 'utf8'));
const texts = readFileSync(a.ids, 'utf8').split('\n').filter((l) => l.trim()).map((l) => l.trim().split(/\s+/).map(Number));
const order = texts.map((t, i) => i).sort((i, j) => texts[i].length - texts[j].length || i - j);
const pad = BigInt(cfg.pad_token_id ?? 0);
const batches = [];
let padded = 0, tokens = 0;
for (let b0 = 0; b0 < order.length; b0 += a.batch) {
  const idx = order.slice(b0, b0 + a.batch);
  const T = Math.max(...idx.map((i) => texts[i].length));
  const ids = new BigInt64Array(idx.length * T).fill(pad), mask = new BigInt64Array(idx.length * T);
  idx.forEach((i, r) => texts[i].forEach((v, t) => { ids[r * T + t] = BigInt(v); mask[r * T + t] = 1n; }));
  padded += idx.length * T;
  batches.push({ idx, feeds: { input_ids: new ort.Tensor('int64', ids, [idx.length, T]),
                               attention_mask: new ort.Tensor('int64', mask, [idx.length, T]) } });
}
for (const t of texts) tokens += t.length;
const session = await ort.InferenceSession.create(path.join(a.model, 'model.onnx'), {
  intraOpNumThreads: a.threads, interOpNumThreads: 1, graphOptimizationLevel: 'all', executionMode: 'sequential',
});
const C = cfg.hidden_size, emb = new Float32Array(texts.length * C);
const times = [];
for (const b of batches.slice(0, a.warmup)) await session.run(b.feeds); // warm-up batches
for (let rep = 0; rep < a.reps; rep++) {
  const t0 = performance.now();
  for (const b of batches) {
    const y = (await session.run(b.feeds)).sentence_embedding.data;
    b.idx.forEach((i, r) => emb.set(y.subarray(r * C, (r + 1) * C), i * C));
  }
  times.push((performance.now() - t0) / 1e3);
}
if (a.embOut) writeFileSync(a.embOut, Buffer.from(emb.buffer));
console.log(JSON.stringify({
  engine: 'ort', version: ort.env.versions?.common ?? '', threads: a.threads, batch: a.batch, texts: texts.length,
  tokens, padded_tokens: padded, times_s: times, peak_rss_kib: Math.round(process.resourceUsage().maxRSS),
}));
