// bench.mjs - the Worker's figures under workerd on this machine:
//   node edge/bench.mjs [DIST] [SECONDS_PER_CASE]     (DIST: build-wasm/edge-dist, from tools/build_edge.sh)
// cold start (spawn `workerd serve` -> first /health answered, i.e. the isolate loaded the model and the index), then
// for POST /embed with 1 and 32 texts and POST /search (hybrid, k 10): requests/s and p50/p99 latency with one client
// (a Worker isolate is single-threaded), the workerd process's peak RSS (VmHWM) and the wasm heap. Prints a
// Markdown table. Numbers on a busy machine are provisional.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const dist = path.resolve(process.argv[2] || path.join(root, 'build-wasm/edge-dist'));
const secs = Number(process.argv[3] || 5);
const workerd = path.join(root, 'edge/node_modules/.bin/workerd');
const port = await new Promise((res) => { const s = net.createServer(); s.listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => res(p)); }); });
const base = `http://127.0.0.1:${port}`;
const t0 = performance.now();
const child = spawn(workerd, ['serve', 'config.capnp', '--socket-addr', `http=127.0.0.1:${port}`], { cwd: dist, stdio: ['ignore', 'ignore', 'inherit'] });
let health;
for (;;) {
  try { const r = await fetch(base + '/health'); if (r.ok) { health = await r.json(); break; } } catch { /* not up */ }
  if (performance.now() - t0 > 60000) { child.kill(); throw new Error('workerd did not come up in 60 s'); }
  await new Promise((r) => setTimeout(r, 20));
}
const cold = performance.now() - t0;
const status = () => Object.fromEntries(readFileSync(`/proc/${child.pid}/status`, 'utf8').split('\n').map((l) => l.split(':')).filter((x) => x.length === 2).map(([k, v]) => [k, v.trim()]));
const words = 'the quick brown fox jumps over a lazy dog while a text editor opens in the terminal window'.split(' ');
const text = (i) => Array.from({ length: 24 }, (_, j) => words[(i * 7 + j * 3) % words.length]).join(' ');
async function run(name, p, body) {
  const lat = [];
  const end = performance.now() + secs * 1000;
  const payload = JSON.stringify(body);
  await (await fetch(base + p, { method: 'POST', headers: { 'content-type': 'application/json' }, body: payload })).arrayBuffer(); // warm
  while (performance.now() < end) {
    const s = performance.now();
    const r = await fetch(base + p, { method: 'POST', headers: { 'content-type': 'application/json' }, body: payload });
    await r.arrayBuffer();
    if (!r.ok) throw new Error(`${name}: HTTP ${r.status}`);
    lat.push(performance.now() - s);
  }
  lat.sort((a, b) => a - b);
  const q = (f) => lat[Math.min(lat.length - 1, Math.floor(f * lat.length))];
  return { name, n: lat.length, rps: lat.length / secs, p50: q(0.5), p99: q(0.99) };
}
const rows = [];
rows.push(await run('/embed, 1 text (24 words)', '/embed', { texts: [text(0)] }));
rows.push(await run('/embed, 32 texts (24 words)', '/embed', { texts: Array.from({ length: 32 }, (_, i) => text(i)) }));
rows.push(await run('/search hybrid, 1 query, k 10', '/search', { query: 'text editor for the terminal', mode: 'hybrid', k: 10 }));
const st = status();
const h2 = await (await fetch(base + '/health')).json();
child.kill();
const code = ['worker.mjs', 'handler.mjs', 'embedtune.mjs', 'embedtune-core-st.mjs', 'embedtune-core-st.wasm', 'assets.mjs']
  .reduce((s, f) => s + readFileSync(path.join(dist, f)).length, 0);
console.log(`workerd on ${dist} (model dim ${health.model.dim}, ${health.model.layers} layers, index ${health.index ? health.index.docs + ' docs ' + health.index.dtype : 'none'}; ${secs} s per case, one client)`);
console.log('');
console.log('| case | requests | req/s | p50 ms | p99 ms |');
console.log('|---|---|---|---|---|');
for (const r of rows) console.log(`| ${r.name} | ${r.n} | ${r.rps.toFixed(1)} | ${r.p50.toFixed(2)} | ${r.p99.toFixed(2)} |`);
console.log('');
console.log(`cold start (spawn workerd -> first /health, model + index loaded): ${cold.toFixed(0)} ms`);
console.log(`memory: workerd peak RSS ${st.VmHWM}, now ${st.VmRSS}; wasm heap ${(h2.heapBytes / 2 ** 20).toFixed(0)} MiB (Workers' limit: 128 MB per isolate)`);
console.log(`script size: code ${(code / 1024).toFixed(0)} KiB (+ model and index as data modules)`);
