// e5small_page.mjs - the page's side of issue 16 item 3: `finetune` of a multilingual-e5-small-shaped model in the wasm
// module (the page's own code path: Embedtune.finetune, the C command with --mem-budget = et_wasm_mem_budget_mb,
// what the heap can still give), all parameters trained vs --freeze-embeddings. 64 random pairs (the generator of
// bench/e5small_memory.sh: queries 24 words, passages 120, dummy vocabulary), max length 128, 1 epoch, batch 16 with
// finetune's 3 mined negatives and batch 8 with 1.
// Per run: the budget the C side got, finetune's up-front estimate (or its refusal), the wasm heap after loading and
// after the run (the heap never shrinks, so the latter is the run's peak), and the wall time.
// usage: node bench/e5small_page.mjs [MODEL] [BUILD]   (defaults /tmp/et-bench/e5small, build-wasm)
import { readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';

const model = process.argv[2] || '/tmp/et-bench/e5small';
const build = path.resolve(process.argv[3] || 'build-wasm');
const { Embedtune, filesFromFolder, shutdown } = await import(path.join(build, 'embedtune.mjs'));

const listing = {};
const walk = (d, rel) => {
  for (const n of readdirSync(d)) {
    const p = path.join(d, n), r = rel ? `${rel}/${n}` : n;
    if (statSync(p).isDirectory()) walk(p, r);
    else if (!n.endsWith('.onnx')) listing[r] = new Uint8Array(readFileSync(p));
  }
};
walk(model, path.basename(model)); // a folder listing as the page gets it: under the folder's name
const files = filesFromFolder(listing);

let seed = 3;
const rnd = (lo, hi) => { seed = (seed * 1103515245 + 12345) % 2147483648; return lo + (seed % (hi - lo)); };
const words = (n) => Array.from({ length: n }, () => `tok${rnd(1000, 250000)}`).join(' ');
const pairs = Array.from({ length: 64 }, () => JSON.stringify({ query: words(24), positive: words(120) })).join('\n') + '\n';

const MiB = (b) => (b / 1048576).toFixed(0);
console.log(['run', 'estimate MiB (budget)', 'heap after load MiB', 'heap after run MiB', 'wall s', 'result'].join(' | '));
const runs = [ // finetune's defaults (batch 16, 3 mined negatives) and a smaller step (batch 8, 1 negative)
  ['all trained, batch 16 x 3 negatives', ['--batch', '16']], ['--freeze-embeddings, batch 16 x 3 negatives', ['--batch', '16', '--freeze-embeddings']],
  ['all trained, batch 8 x 1 negative', ['--batch', '8', '--negatives', '1']],
  ['--freeze-embeddings, batch 8 x 1 negative', ['--batch', '8', '--negatives', '1', '--freeze-embeddings']]];
// one module, as in the page: each run starts from the loaded model (finetune frees it first and loads the result, or
// the starting model again after a refusal); the heap only grows, so 'heap after run' is the peak so far
const m = await Embedtune.load(files, { threads: 2 });
const loaded = m.heap8().byteLength;
for (const [name, extra] of runs) {
  const t0 = performance.now();
  let est = '', res = 'ok';
  try {
    const r = m.finetune(pairs, 'pairs.jsonl', ['--epochs', '1', '--max-len', '128', '--no-dropout', ...extra]);
    const mem = r.result.memory || {};
    est = `${(mem.estimate_mib ?? NaN).toFixed(0)} (budget ${(mem.budget_mib ?? NaN).toFixed(0)})`;
  } catch (e) {
    res = 'refused: ' + e.message.slice(0, 160);
    const g = /needs about ([0-9.]+) MiB.*budget is ([0-9.]+) MiB/.exec(e.message);
    if (g) est = `${Number(g[1]).toFixed(0)} (budget ${Number(g[2]).toFixed(0)})`;
  }
  const wall = ((performance.now() - t0) / 1000).toFixed(1);
  console.log([name, est, MiB(loaded), MiB(m.heap8().byteLength), wall, res].join(' | '));
}
m.dispose();
await shutdown();
