// use.mjs - run from an empty project where the packed "embedtune" tarball was installed (tools/test_package.sh):
//   node use.mjs ROOT  |  deno run --allow-read --allow-env use.mjs ROOT
// Loads models/compact through the package's bare import, encodes, compares with ROOT/expected.jsonl (the native
// CLI's `encode` of the same texts, written by the test) within 1e-5, and searches an index file. Then the threaded
// core with 2 threads (Deno: its pthreads start through the package's embedtune-core.worker.mjs): the same
// embeddings within 1e-5 of native, the pool's second thread did part of the work (per-thread CPU time from
// /proc/self/task: the calling thread's share of a 2-thread encode must be <= 75 %; it is ~90 % with 1 thread), and
// a timing line, 1 vs 2 threads (wall clock, whatever else the machine runs). Prints "PASS".
import { Embedtune, shutdown } from 'embedtune';

const isDeno = typeof Deno !== 'undefined';
const root = isDeno ? Deno.args[0] : process.argv[2];
const readBytes = async (p) => (isDeno ? await Deno.readFile(p) : (await import('node:fs')).readFileSync(p));
const readText = async (p) => new TextDecoder().decode(await readBytes(p));
const m = `${root}/models/compact`;
const files = {
  config: await readBytes(`${m}/config.json`), vocab: await readBytes(`${m}/vocab.txt`), safetensors: await readBytes(`${m}/model.safetensors`),
  modules: await readBytes(`${m}/modules.json`), pooling: await readBytes(`${m}/1_Pooling/config.json`),
};
const et = await Embedtune.load(files, { threads: 1 });
const texts = (await readText(`${root}/texts.txt`)).trimEnd().split('\n');
const ref = (await readText(`${root}/expected.jsonl`)).trim().split('\n').map((l) => JSON.parse(l).embedding);
const emb = et.encode(texts);
let maxd = 0;
for (let i = 0; i < texts.length; i++) for (let j = 0; j < et.dim; j++) maxd = Math.max(maxd, Math.abs(emb[i * et.dim + j] - ref[i][j]));
if (!(maxd <= 1e-5)) throw new Error(`embeddings differ from the native CLI by ${maxd}`);
const ix = et.openIndex(await readBytes(`${root}/index.etix`));
const hits = ix.search(['text editor for the terminal'], { k: 3, mode: 'hybrid' })[0];
const want = (await readText(`${root}/search.jsonl`)).trim();
const got = JSON.parse(want).results.map((h) => h.id).join(',');
if (hits.map((h) => h.id).join(',') !== got) throw new Error(`search: ${hits.map((h) => h.id)} vs native ${got}`);
const rt = isDeno ? 'deno' : 'node';
console.log(`ok   ${rt}: ${texts.length} embeddings within ${maxd.toExponential(2)} of native; search ${got}`);

// threads: 2
const maxDiff = (a, b) => { let d = 0; for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i])); return d; };
const et2 = await Embedtune.load(files, { threads: 2 });
if (et2.info.threads !== 2) throw new Error(`threads: asked for 2, the core runs ${et2.info.threads}`);
const emb2 = et2.encode(texts);
let maxd2 = 0;
for (let i = 0; i < texts.length; i++) for (let j = 0; j < et2.dim; j++) maxd2 = Math.max(maxd2, Math.abs(emb2[i * et2.dim + j] - ref[i][j]));
if (!(maxd2 <= 1e-5)) throw new Error(`2 threads: embeddings differ from the native CLI by ${maxd2}`);
// per-thread CPU ticks (utime + stime) of this process, Linux only
const pid = isDeno ? Deno.pid : process.pid;
const fs = isDeno ? null : await import('node:fs');
const readSync = isDeno ? (p) => Deno.readTextFileSync(p) : (p) => fs.readFileSync(p, 'utf8');
const listTasks = isDeno ? () => [...Deno.readDirSync('/proc/self/task')].map((e) => e.name) : () => fs.readdirSync('/proc/self/task');
let procOk = true;
try { listTasks(); } catch { procOk = false; }
const ticks = () => {
  const o = new Map();
  for (const t of listTasks()) {
    try { const f = readSync(`/proc/self/task/${t}/stat`).split(') ')[1].split(' '); o.set(t, Number(f[11]) + Number(f[12])); } catch { /* thread ended */ }
  }
  return o;
};
const work = Array.from({ length: 128 }, (_, i) => `${i}: ${texts[i % texts.length]} and a longer passage about packages, editors and compilers `.repeat(2));
const timed = (e) => {
  e.encode(work.slice(0, 4));
  const a = procOk ? ticks() : null, t0 = performance.now();
  const out = e.encode(work);
  const ms = performance.now() - t0, b = procOk ? ticks() : null;
  let main = 0, all = 0;
  if (b) for (const [t, v] of b) { const d = v - (a.get(t) || 0); all += d; if (t === String(pid)) main += d; }
  return { out, ms, mainShare: all ? main / all : NaN, all };
};
const r1 = timed(et), r2 = timed(et2);
const d12 = maxDiff(r1.out, r2.out);
if (!(d12 <= 1e-5)) throw new Error(`1 vs 2 threads: embeddings differ by ${d12}`);
if (procOk && !(r2.mainShare <= 0.75)) throw new Error(`2 threads: the calling thread did ${(100 * r2.mainShare).toFixed(0)} % of the CPU time (${r2.all} ticks): the pool did not run`);
console.log(`ok   ${rt} threads 2: ${texts.length} embeddings within ${maxd2.toExponential(2)} of native, 1 vs 2 threads differ by ${d12.toExponential(2)}; ` +
  (procOk ? `calling thread's CPU share ${(100 * r1.mainShare).toFixed(0)} % (1 thread) vs ${(100 * r2.mainShare).toFixed(0)} % (2 threads)` : 'no /proc: CPU shares not checked'));
console.log(`time ${rt}: encode ${work.length} texts: 1 thread ${r1.ms.toFixed(0)} ms, 2 threads ${r2.ms.toFixed(0)} ms (${(r1.ms / r2.ms).toFixed(2)}x; wall clock on a busy machine)`);
et2.dispose();
et.dispose();
await shutdown();
console.log(`PASS ${rt}`);
