// ort_encode.mjs - onnxruntime-node side of the encode-throughput benchmark (see bench/README.md).
//
//   node bench/ort_encode.mjs --model DIR --threads 2 --batch 32 --seq 128 [--warmup 2] [--reps 5]
//       times DIR/model.onnx (intraOpNumThreads t, interOpNumThreads 1, graph optimization 'all')
//       on the benchmark's fixed ids (xorshift32, same as torch_encode.py and bench_encode.c) with a
//       full attention mask; prints one JSON object.
//   node bench/ort_encode.mjs --model DIR --check [--tol 1e-4]
//       runs DIR/check.json's padded batch and compares with torch's pooled output; exit 1 if off.
//
// Needs onnxruntime-node in bench/node_modules:
//   (cd bench && ONNXRUNTIME_NODE_INSTALL=skip npm install --no-package-lock)
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import ort from 'onnxruntime-node';

function parseArgs(argv) {
  const a = { model: '/tmp/et-bench/minilm', threads: 1, batch: 32, seq: 128, warmup: 2, reps: 5,
              minTime: 0, check: false, tol: 1e-4 };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    const next = () => { if (i + 1 >= argv.length) throw new Error(`${k}: missing value`); return argv[++i]; };
    if (k === '--model') a.model = next();
    else if (k === '--threads') a.threads = +next();
    else if (k === '--batch') a.batch = +next();
    else if (k === '--seq') a.seq = +next();
    else if (k === '--warmup') a.warmup = +next();
    else if (k === '--reps') a.reps = +next();
    else if (k === '--min-time') a.minTime = +next();
    else if (k === '--tol') a.tol = +next();
    else if (k === '--check') a.check = true;
    else throw new Error(`unknown option ${k}`);
  }
  return a;
}

// xorshift32, identical to torch_encode.py bench_ids() and bench_encode.c
function benchIds(batch, seq, vocab, seed = 12345) {
  let x = seed >>> 0;
  const out = new BigInt64Array(batch * seq);
  for (let i = 0; i < batch * seq; i++) {
    x = (x ^ (x << 13)) >>> 0;
    x = (x ^ (x >>> 17)) >>> 0;
    x = (x ^ (x << 5)) >>> 0;
    out[i] = BigInt(1000 + (x % (vocab - 1000)));
  }
  return out;
}

const median = (v) => { const s = [...v].sort((p, q) => p - q); const n = s.length;
  return n % 2 ? s[(n - 1) / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]); };

const a = parseArgs(process.argv.slice(2));
const cfg = JSON.parse(readFileSync(path.join(a.model, 'config.json'), 'utf8'));
const session = await ort.InferenceSession.create(path.join(a.model, 'model.onnx'), {
  intraOpNumThreads: a.threads, interOpNumThreads: 1, graphOptimizationLevel: 'all', executionMode: 'sequential',
});
const feeds = (ids, mask, B, S) => ({
  input_ids: new ort.Tensor('int64', ids, [B, S]),
  attention_mask: new ort.Tensor('int64', mask, [B, S]),
});

if (a.check) {
  const c = JSON.parse(readFileSync(path.join(a.model, 'check.json'), 'utf8'));
  const r = await session.run(feeds(BigInt64Array.from(c.input_ids.map(BigInt)),
                                    BigInt64Array.from(c.attention_mask.map(BigInt)), c.batch, c.seq));
  const y = r.sentence_embedding.data;
  let maxd = 0;
  for (let i = 0; i < c.pooled.length; i++) maxd = Math.max(maxd, Math.abs(y[i] - c.pooled[i]));
  const ok = y.length === c.pooled.length && maxd <= a.tol;
  console.error(`ort check: ${c.batch}x${c.seq} padded batch, max |onnxruntime - torch| = ${maxd.toExponential(2)} ` +
                `(tol ${a.tol}) ${ok ? 'OK' : 'FAIL'}`);
  process.exit(ok ? 0 : 1);
}

const ids = benchIds(a.batch, a.seq, cfg.vocab_size);
const mask = new BigInt64Array(a.batch * a.seq).fill(1n);
const f = feeds(ids, mask, a.batch, a.seq);
let out;
for (let i = 0; i < a.warmup; i++) await session.run(f);
const times = [];
const t0all = performance.now();
while (times.length < a.reps || (performance.now() - t0all) / 1e3 < a.minTime) {
  const t0 = performance.now();
  out = await session.run(f);
  times.push((performance.now() - t0) / 1e3);
}
let checksum = 0;
for (const v of out.sentence_embedding.data) checksum += v;
const best = Math.min(...times), med = median(times);
console.log(JSON.stringify({
  engine: 'ort', version: ort.env.versions?.common ?? '', threads: a.threads, batch: a.batch, seq: a.seq,
  times_s: times, best_s: best, median_s: med, sps_best: a.batch / best, sps_median: a.batch / med, checksum,
}));
