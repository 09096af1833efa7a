// wasm_bench.mjs - WebAssembly throughput: embedtune wasm vs onnxruntime-web vs native, in node and in
// headless Chromium, 1 and 2 threads, against the measured WASM SIMD peak (bench/README.md, "WebAssembly").
// Normally run through bench/run_wasm_bench.sh (it builds and makes the data first).
//
//   node bench/wasm_bench.mjs [--rounds 2] [--threads "1 2"] [--shapes "32x128 1x32"] [--runtimes "node chromium"]
//        [--parts "peak encode gemm train native"] [--data /tmp/et-bench] [--build build-wasm]
//        [--native-build build-bench] [--min-time 2] [--out FILE.jsonl]
//   node bench/wasm_bench.mjs --summarize FILE.jsonl
//   node bench/wasm_bench.mjs --task '{"kind":"et","threads":2,"shapes":[[32,128]]}'   (one node task; prints JSON)
// Every node task runs in a fresh node process; every Chromium task in a fresh module Worker of one page
// (served here with COOP/COEP, so the page is cross-origin isolated and both engines get threads).
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync, appendFileSync, existsSync, statSync, createReadStream, mkdirSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { runTask, encodeFlops } from './wasm_bench_page.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(HERE, '..');

function parseArgs(argv) {
  const a = { rounds: 2, threads: [1, 2], shapes: [[32, 128], [1, 32]], runtimes: ['node', 'chromium'],
    parts: ['peak', 'encode', 'gemm', 'train', 'native'], data: '/tmp/et-bench', build: path.join(REPO, 'build-wasm'),
    nativeBuild: path.join(REPO, 'build-bench'), minTime: 2, out: null, summarize: null, task: null, trainThreads: [2] };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    const next = () => { if (i + 1 >= argv.length) throw new Error(`${k}: missing value`); return argv[++i]; };
    if (k === '--rounds') a.rounds = +next();
    else if (k === '--threads') a.threads = next().trim().split(/\s+/).map(Number);
    else if (k === '--train-threads') a.trainThreads = next().trim().split(/\s+/).map(Number);
    else if (k === '--shapes') a.shapes = next().trim().split(/\s+/).map((s) => s.split('x').map(Number));
    else if (k === '--runtimes') a.runtimes = next().trim().split(/\s+/);
    else if (k === '--parts') a.parts = next().trim().split(/\s+/);
    else if (k === '--data') a.data = path.resolve(next());
    else if (k === '--build') a.build = path.resolve(next());
    else if (k === '--native-build') a.nativeBuild = path.resolve(next());
    else if (k === '--min-time') a.minTime = +next();
    else if (k === '--out') a.out = next();
    else if (k === '--summarize') a.summarize = next();
    else if (k === '--task') a.task = JSON.parse(next());
    else throw new Error(`unknown option ${k}`);
  }
  return a;
}

const nodeEnv = (a) => ({
  urls: { embedtune: pathToFileURL(path.join(a.build, 'embedtune.mjs')).href,
    ort: pathToFileURL(path.join(HERE, 'node_modules/onnxruntime-web/dist/ort.node.min.mjs')).href,
    ortWasmDir: null, peakDir: pathToFileURL(path.join(a.build, 'wasm-bench') + '/').href },
  bytes: async (rel) => new Uint8Array(readFileSync(path.join(a.data, rel))),
});

// ------------------------------------------------------------------------------ static server
const TYPES = { '.html': 'text/html', '.mjs': 'text/javascript', '.js': 'text/javascript', '.wasm': 'application/wasm',
  '.json': 'application/json' };
function serve(a) {
  const mounts = {
    bench: [HERE, /^wasm_bench(\.html|_page\.mjs)$/],
    wasm: [a.build, /^(embedtune\.mjs|worker\.mjs|embedtune-core(-st)?\.(mjs|wasm)|embedtune-core\.worker\.js)$/],
    peak: [path.join(a.build, 'wasm-bench'), /^simd_peak(-st)?\.(mjs|wasm)$|^simd_peak\.worker\.js$/],
    ort: [path.join(HERE, 'node_modules/onnxruntime-web/dist'), /^(ort\.wasm\.min\.mjs|ort-wasm-simd-threaded\.(mjs|wasm))$/],
    data: [a.data, /^[\w.-]+(\/[\w.-]+){0,2}$/],
  };
  const srv = http.createServer((req, res) => {
    const u = new URL(req.url, 'http://x');
    const m = u.pathname.match(/^\/([a-z]+)\/(.+)$/);
    const mount = m && mounts[m[1]];
    const rel = m && decodeURIComponent(m[2]);
    const file = mount && mount[1].test(rel) && !rel.includes('..') ? path.join(mount[0], rel) : null;
    if (!file || !existsSync(file) || !statSync(file).isFile()) {
      if (u.pathname !== '/favicon.ico') console.error(`server: 404 ${u.pathname}`);
      res.writeHead(404); res.end('not found'); return;
    }
    res.writeHead(200, { 'Content-Type': TYPES[path.extname(file)] || 'application/octet-stream',
      'Content-Length': statSync(file).size, 'Cross-Origin-Opener-Policy': 'same-origin',
      'Cross-Origin-Embedder-Policy': 'require-corp', 'Cross-Origin-Resource-Policy': 'same-origin', 'Cache-Control': 'no-store' });
    createReadStream(file).pipe(res);
  });
  return new Promise((r) => srv.listen(0, '127.0.0.1', () => r(srv)));
}

async function openChromium(origin) {
  const req = createRequire(path.join(REPO, 'web', 'package.json'));
  const { chromium } = req('playwright-core');
  const dir = path.join(os.tmpdir(), `et-wasm-bench-${process.pid}`);
  const ctx = await chromium.launchPersistentContext(dir, { executablePath: process.env.ET_CHROMIUM || '/usr/bin/chromium',
    headless: true, args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'] });
  const page = ctx.pages()[0] || await ctx.newPage();
  const foreign = [];
  const onReq = (r) => { const u = r.url(); if (!u.startsWith(origin + '/') && !u.startsWith('data:') && !u.startsWith('blob:')) foreign.push(u); };
  ctx.on('request', onReq); page.on('request', onReq);
  page.on('pageerror', (e) => console.error(`[pageerror] ${e.message}`));
  page.on('console', (m) => { if (m.type() === 'error') console.error(`[console.error] ${m.text()}`); });
  await page.goto(`${origin}/bench/wasm_bench.html`);
  await page.waitForFunction(() => window.__ready, null, { timeout: 30000 });
  const ready = await page.evaluate(() => window.__ready);
  return { ctx, page, ready, foreign, close: async () => { await ctx.close(); spawnSync('rm', ['-rf', dir]); } };
}

// ------------------------------------------------------------------------------ runners
function runNodeTask(task) {
  const r = spawnSync(process.execPath, ['--no-experimental-fetch', path.join(HERE, 'wasm_bench.mjs'), ...globalArgs, '--task', JSON.stringify(task)],
    { encoding: 'utf8', maxBuffer: 64 << 20, timeout: 900e3 });
  const line = (r.stdout || '').trim().split('\n').filter((l) => l.startsWith('{')).pop();
  if (r.status !== 0 || !line) throw new Error(`node task ${JSON.stringify(task)} failed (rc ${r.status}):\n${(r.stderr || '').slice(-3000)}`);
  return JSON.parse(line);
}

function runNativeEncode(a, t, B, T) {
  const bin = path.join(a.nativeBuild, 'bench_encode');
  const r = spawnSync(bin, ['--model', path.join(a.data, 'minilm'), '--threads', String(t), '--batch', String(B), '--seq', String(T),
    '--min-time', String(a.minTime)], { encoding: 'utf8', timeout: 600e3 });
  if (r.status !== 0) throw new Error(`${bin} failed: ${r.stderr}`);
  const j = JSON.parse(r.stdout.trim().split('\n').pop());
  return j;
}

function runGemm(cmd, args, filter, maxThr) {
  const r = spawnSync(cmd[0], [...cmd.slice(1), ...args, filter, String(maxThr)], { encoding: 'utf8', timeout: 600e3 });
  if (r.status !== 0) throw new Error(`${cmd.join(' ')} failed: ${r.stderr}`);
  const rows = [];
  for (const line of r.stdout.split('\n')) {
    const m = line.match(/^(\d+ [NT][NT])\s+(\d+)\s+([\d.]+|inf)/);
    if (m) rows.push({ case: m[1], threads: +m[2], gflops: m[3] === 'inf' ? null : +m[3] });
  }
  return rows;
}

const globalArgs = [];

async function main() {
  const argv = process.argv.slice(2);
  const a = parseArgs(argv);
  for (const k of ['--data', '--build']) { const i = argv.indexOf(k); if (i >= 0) globalArgs.push(k, argv[i + 1]); }
  if (a.task) {
    const r = await runTask(a.task, nodeEnv(a));
    console.log(JSON.stringify(r));
    process.exit(0);
  }
  if (a.summarize) { summarize(a.summarize); return; }

  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  const out = a.out || path.join(a.data, `wasm-bench-${stamp}.jsonl`);
  mkdirSync(path.dirname(out), { recursive: true });
  const rec = (o) => appendFileSync(out, JSON.stringify(o) + '\n');
  const commit = spawnSync('git', ['-C', REPO, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).stdout.trim();
  const dirty = spawnSync('git', ['-C', REPO, 'status', '--porcelain', 'src', 'wasm'], { encoding: 'utf8' }).stdout.trim() ? '+dirty' : '';
  writeFileSync(out, '');
  rec({ meta: true, commit: commit + dirty, date: new Date().toISOString(), load_start: os.loadavg(), node: process.version,
    cpu: os.cpus()[0]?.model, ncpu: os.cpus().length, args: a });

  let srv = null, br = null;
  if (a.runtimes.includes('chromium')) {
    srv = await serve(a);
    const origin = `http://127.0.0.1:${srv.address().port}`;
    br = await openChromium(origin);
    console.error(`chromium: ${br.ready.userAgent.match(/Chrome\/[\d.]+/)?.[0]}, crossOriginIsolated ${br.ready.crossOriginIsolated}, ` +
      `hardwareConcurrency ${br.ready.hardwareConcurrency}`);
    rec({ meta: true, chromium: br.ready });
  }
  const run = async (runtime, task) => {
    const t0 = Date.now();
    let r;
    try {
      r = runtime === 'node' ? runNodeTask(task) : await br.page.evaluate((t) => window.__run(t), task);
    } catch (e) {
      console.error(`FAILED ${runtime} ${JSON.stringify(task)}: ${String(e.message || e).slice(0, 2000)}`);
      rec({ runtime, task, error: String(e.message || e).slice(0, 4000) });
      return null;
    }
    r.runtime = runtime; r.load = os.loadavg()[0]; r.round = task.round;
    rec(r);
    const brief = r.engine === 'peak' ? `${r.gflops_best.toFixed(1)} GF/s peak` :
      r.engine === 'train' ? `epoch ${r.epoch_s.toFixed(1)} s (${r.steps} steps)` :
        r.shapes.map((s) => `${s.batch}x${s.seq} ${s.sps_best.toFixed(2)} s/s ${s.gflops_best.toFixed(1)} GF/s`).join(', ');
    console.error(`[${((Date.now() - t0) / 1e3).toFixed(0)} s, load ${os.loadavg()[0].toFixed(1)}] ${runtime} ${r.engine} t${task.threads}: ${brief}`);
    return r;
  };
  const timing = { warmup: 1, reps: 3, minTime: a.minTime };  // 1 warm-up: a 32x128 pass is seconds long, enough for V8's tier-up
  for (let round = 1; round <= a.rounds; round++) {
    console.error(`=== round ${round}/${a.rounds}`);
    const rot = (arr) => arr.map((_, i) => arr[(i + round - 1) % arr.length]);
    if (a.parts.includes('peak'))
      for (const rt of rot(a.runtimes)) for (const t of a.threads) await run(rt, { kind: 'peak', threads: t, round });
    if (a.parts.includes('encode')) {
      for (const t of a.threads) {
        const jobs = [];
        for (const rt of a.runtimes) for (const eng of ['et', 'ort']) jobs.push([rt, eng]);
        if (a.parts.includes('native')) jobs.push(['native', 'native']);
        for (const [rt, eng] of rot(jobs)) {
          if (rt === 'native') {
            for (const [B, T] of a.shapes) {
              try {
                const j = runNativeEncode(a, t, B, T);
                const cfg = JSON.parse(readFileSync(path.join(a.data, 'minilm/config.json'), 'utf8'));
                const r = { runtime: 'native', engine: 'embedtune', threads: t, round, load: os.loadavg()[0],
                  shapes: [{ batch: B, seq: T, times_s: j.times_s, best_s: j.best_s, median_s: j.median_s, sps_best: B / j.best_s,
                    sps_median: B / j.median_s, gflops_best: encodeFlops(cfg, B, T) / j.best_s / 1e9 }] };
                rec(r);
                console.error(`native embedtune t${t}: ${B}x${T} ${r.shapes[0].sps_best.toFixed(2)} s/s ${r.shapes[0].gflops_best.toFixed(1)} GF/s`);
              } catch (e) { console.error(String(e)); }
            }
          } else {
            await run(rt, { kind: eng, threads: t, shapes: a.shapes, timing, round });
          }
        }
      }
    }
    if (a.parts.includes('gemm')) {
      for (const f of ['512 NN', '1024 NN']) {
        const w = runGemm(['node', '--no-experimental-fetch', path.join(a.build, 'bench_gemm.js')], ['3', 'auto'], f, Math.max(...a.threads));
        for (const r of w) rec({ runtime: 'node', engine: 'gemm', round, load: os.loadavg()[0], ...r });
        console.error(`gemm wasm node ${f}: ${w.map((r) => `t${r.threads} ${r.gflops} GF/s`).join(', ')}`);
        if (a.parts.includes('native') && existsSync(path.join(a.nativeBuild, 'bench_gemm'))) {
          const n = runGemm([path.join(a.nativeBuild, 'bench_gemm')], ['3', 'auto'], f, Math.max(...a.threads));
          for (const r of n) rec({ runtime: 'native', engine: 'gemm', round, load: os.loadavg()[0], ...r });
          console.error(`gemm native ${f}: ${n.map((r) => `t${r.threads} ${r.gflops} GF/s`).join(', ')}`);
        }
      }
    }
    if (a.parts.includes('train'))
      for (const rt of rot(a.runtimes)) for (const t of a.trainThreads) await run(rt, { kind: 'train', threads: t, round });
    if (a.parts.includes('trainstep')) { // MiniLM train step (bench_train's shape: 32x32 queries, 32x128 documents)
      for (const t of a.trainThreads) {
        for (const rt of rot(a.runtimes))
          await run(rt, { kind: 'train', threads: t, round, model: 'minilm', synthetic: { pairs: 160 }, batch: 32, maxLenQ: 32,
            maxLenD: 128, maxSteps: 4 });
        const bin = path.join(a.nativeBuild, 'bench_train');
        if (!existsSync(bin)) console.error(`no ${bin}: native train step skipped`);
        else {
          const r = spawnSync(bin, ['--model', path.join(a.data, 'minilm'), '--threads', String(t), '--reps', '3'], { encoding: 'utf8', timeout: 600e3 });
          try {
            const j = JSON.parse(r.stdout.trim().split('\n').pop());
            rec({ runtime: 'native', engine: 'trainstep', threads: t, round, load: os.loadavg()[0], step_best_s: j.best_s, step_median_s: j.median_s });
            console.error(`native train step t${t}: best ${j.best_s.toFixed(2)} s`);
          } catch (e) { console.error(`bench_train failed: ${r.stderr}`); }
        }
      }
    }
  }
  if (br) {
    rec({ meta: true, foreign_requests: br.foreign });
    if (br.foreign.length) console.error(`WARNING: requests left the origin: ${br.foreign.slice(0, 5).join(' ')}`);
    await br.close();
  }
  if (srv) srv.close();
  rec({ meta: true, load_end: os.loadavg() });
  summarize(out);
}

// ------------------------------------------------------------------------------ tables
function summarize(file) {
  const rows = readFileSync(file, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));
  const meta = Object.assign({}, ...rows.filter((r) => r.meta));
  const res = rows.filter((r) => !r.meta && !r.error);
  const f1 = (x, w = 8, d = 1) => (x == null || !isFinite(x) ? '-' : x.toFixed(d)).padStart(w);
  const pct = (x) => (x == null || !isFinite(x) ? '-' : `${(100 * x).toFixed(0)}%`).padStart(6);
  const runtimes = [...new Set(res.map((r) => r.runtime))].filter((r) => r !== 'native');
  const threads = [...new Set(res.filter((r) => r.threads).map((r) => r.threads))].sort();
  // The peak used for the % columns: the measured t-thread peak, or t x the measured 1-thread peak if that is
  // higher (a core's peak is a property of the hardware; on a loaded machine the t-thread run loses cores).
  const peak = {};
  console.log(`\nWASM SIMD128 peak (f32x4 mul+add, ${res.find((r) => r.engine === 'peak')?.acc ?? '?'} chains; best run / median run; GFLOP/s)`);
  console.log(`${'runtime'.padEnd(9)} ${'threads'.padStart(7)} ${'best'.padStart(8)} ${'median'.padStart(8)} ${'used'.padStart(8)}  (used = max(best, threads x 1-thread best))`);
  for (const rt of runtimes) for (const t of threads) {
    const p = res.filter((r) => r.engine === 'peak' && r.runtime === rt && r.threads === t);
    if (!p.length) continue;
    const b = Math.max(...p.map((r) => r.gflops_best));
    const p1 = res.filter((r) => r.engine === 'peak' && r.runtime === rt && r.threads === 1);
    peak[`${rt}:${t}`] = Math.max(b, p1.length ? t * Math.max(...p1.map((r) => r.gflops_best)) : 0);
    console.log(`${rt.padEnd(9)} ${String(t).padStart(7)} ${f1(b)} ${f1(Math.max(...p.map((r) => r.gflops_median)))} ${f1(peak[`${rt}:${t}`])}`);
  }
  const shapes = [...new Set(res.filter((r) => r.shapes).flatMap((r) => r.shapes.map((s) => `${s.batch}x${s.seq}`)))];
  const best = (rt, eng, t, shape) => {
    const v = res.filter((r) => r.runtime === rt && r.engine === eng && r.threads === t && r.shapes)
      .flatMap((r) => r.shapes.filter((s) => `${s.batch}x${s.seq}` === shape));
    if (!v.length) return null;
    const b = v.reduce((p, q) => (q.best_s < p.best_s ? q : p));
    const allTimes = v.flatMap((s) => s.times_s || []);
    return { ...b, median_all: allTimes.length ? b.batch / median(allTimes) : null, n: allTimes.length };
  };
  for (const shape of shapes) {
    console.log(`\nencode ${shape} (random MiniLM-L6): sentences/s at the BEST rep of all rounds (median of all reps in brackets), GFLOP/s at best, % of that runtime's measured peak`);
    console.log(`${'runtime'.padEnd(9)} ${'thr'.padStart(3)} ${'embedtune'.padStart(17)} ${'GF/s'.padStart(6)} ${'%peak'.padStart(6)} ${'ort-web'.padStart(17)} ${'GF/s'.padStart(6)} ${'%peak'.padStart(6)} ${'et/ort'.padStart(7)}  goal 1.2x`);
    for (const rt of runtimes) for (const t of threads) {
      const e = best(rt, 'embedtune', t, shape), o = best(rt, 'ort', t, shape), pk = peak[`${rt}:${t}`];
      if (!e && !o) continue;
      const ratio = e && o ? e.sps_best / o.sps_best : null;
      const cell = (x) => (x ? `${x.sps_best.toFixed(2)} (${x.median_all.toFixed(2)})` : '-').padStart(17);
      console.log(`${rt.padEnd(9)} ${String(t).padStart(3)} ${cell(e)} ${f1(e?.gflops_best, 6)} ${pct(e && pk ? e.gflops_best / pk : null)} ` +
        `${cell(o)} ${f1(o?.gflops_best, 6)} ${pct(o && pk ? o.gflops_best / pk : null)} ${f1(ratio, 6, 2)}x  ${ratio == null ? '' : ratio >= 1.2 ? 'met' : 'NOT met'}`);
    }
    for (const t of threads) {
      const n = best('native', 'embedtune', t, shape);
      if (n) console.log(`${'native'.padEnd(9)} ${String(t).padStart(3)} ${`${n.sps_best.toFixed(2)} (${n.median_all.toFixed(2)})`.padStart(17)} ${f1(n.gflops_best, 6)}   (embedtune native AVX-512, for reference)`);
    }
  }
  const gem = res.filter((r) => r.engine === 'gemm');
  if (gem.length) {
    console.log(`\nGEMM (bench_gemm, best of 3 per round, best over rounds; GFLOP/s): wasm in node vs native; wasm as % of node's peak`);
    console.log(`${'case'.padEnd(8)} ${'thr'.padStart(3)} ${'wasm'.padStart(8)} ${'%peak'.padStart(6)} ${'native'.padStart(8)}  goal 70%`);
    for (const c of [...new Set(gem.map((r) => r.case))]) for (const t of threads) {
      const w = gem.filter((r) => r.case === c && r.threads === t && r.runtime === 'node' && r.gflops);
      const n = gem.filter((r) => r.case === c && r.threads === t && r.runtime === 'native' && r.gflops);
      if (!w.length) continue;
      const wb = Math.max(...w.map((r) => r.gflops)), pk = peak[`node:${t}`];
      console.log(`${c.padEnd(8)} ${String(t).padStart(3)} ${f1(wb)} ${pct(pk ? wb / pk : null)} ${f1(n.length ? Math.max(...n.map((r) => r.gflops)) : null)}  ${pk ? (wb / pk >= 0.7 ? 'met' : 'NOT met') : ''}`);
    }
  }
  const ts = res.filter((r) => (r.engine === 'train' && r.model === 'minilm') || r.engine === 'trainstep');
  if (ts.length) {
    console.log(`\ntrain step, random MiniLM-L6, 32 queries x 32 + 32 documents x 128 tokens, InfoNCE + AdamW: best step seconds`);
    console.log(`(wasm: Embedtune trainRun(1), dropout on, first step excluded by best-of; native: bench_train, dropout off)`);
    for (const t of threads) {
      const cells = [...runtimes, 'native'].map((rt) => {
        const v = ts.filter((r) => r.runtime === rt && r.threads === t);
        return `${rt} ${v.length ? Math.min(...v.map((r) => r.step_best_s)).toFixed(2) : '-'}`;
      });
      if (ts.some((r) => r.threads === t)) console.log(`  ${t} thr: ${cells.join(', ')}`);
    }
  }
  const tr = res.filter((r) => r.engine === 'train' && r.model !== 'minilm');
  if (tr.length) {
    console.log(`\ntraining: one epoch, 2-layer compact-shaped model (hidden 128, 4 heads, FF 512), InfoNCE, batch ${tr[0].cfg.batch}, ` +
      `maxLenQ ${tr[0].cfg.maxLenQ}, maxLenD ${tr[0].cfg.maxLenD}, ${tr[0].examples} pairs, Embedtune trainBegin/trainRun`);
    console.log(`${'runtime'.padEnd(9)} ${'thr'.padStart(3)} ${'best s'.padStart(8)} ${'runs'.padStart(5)} ${'ex/s'.padStart(7)} ${'loss'.padStart(13)}  goal < 60 s`);
    for (const rt of runtimes) for (const t of threads) {
      const v = tr.filter((r) => r.runtime === rt && r.threads === t);
      if (!v.length) continue;
      const b = v.reduce((p, q) => (q.epoch_s < p.epoch_s ? q : p));
      console.log(`${rt.padEnd(9)} ${String(t).padStart(3)} ${f1(b.epoch_s)} ${String(v.length).padStart(5)} ${f1(b.examples_per_s, 7)} ` +
        `${`${b.loss_first?.toFixed(2)}->${b.loss_last?.toFixed(2)}`.padStart(13)}  ${b.epoch_s < 60 ? 'met' : 'NOT met'}`);
    }
  }
  const errs = rows.filter((r) => r.error);
  for (const e of errs) console.log(`ERROR ${e.runtime} ${JSON.stringify(e.task)}: ${e.error.split('\n')[0]}`);
  const ortv = res.find((r) => r.engine === 'ort')?.version;
  console.log(`\nembedtune ${meta.commit}, onnxruntime-web ${ortv || '-'}, node ${meta.node}, ` +
    `${meta.chromium ? meta.chromium.userAgent.match(/Chrome\/[\d.]+/)?.[0] + ` (crossOriginIsolated ${meta.chromium.crossOriginIsolated})` : 'no chromium'}, ` +
    `${meta.cpu} x${meta.ncpu}; load average at start ${meta.load_start?.map((x) => x.toFixed(2)).join('/')}, ` +
    `at end ${meta.load_end?.map((x) => x.toFixed(2)).join('/') ?? '?'}; per-task 1-min load in the jsonl`);
  if (meta.foreign_requests?.length) console.log(`WARNING: the page made requests outside its origin: ${meta.foreign_requests.length}`);
  console.log(`raw results: ${file}`);
}

function median(v) { const s = [...v].sort((p, q) => p - q); const n = s.length; return n % 2 ? s[(n - 1) / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]); }

main().catch((e) => { console.error(e); process.exit(1); });
