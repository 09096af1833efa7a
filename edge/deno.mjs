// deno.mjs - the same service (edge/handler.mjs) under Deno:
//   deno run --allow-read=DIST --allow-net=127.0.0.1 edge/deno.mjs DIST [PORT] [--threads N]
// DIST is the folder tools/build_edge.sh assembles (the Worker's files, plus the threaded core for Deno). Deno may
// compile wasm from bytes, so the core is instantiated from the .wasm read here; the rest is the Worker's code.
// --threads N (default 1): N > 1 runs the threaded core (embedtune-core.mjs: Deno has SharedArrayBuffer, Atomics and
// workers; its pthreads start through embedtune-core.worker.mjs), loaded by the package's loadCore.
const args = Deno.args.slice();
let threads = 1;
const ti = args.indexOf('--threads');
if (ti >= 0) {
  threads = Number(args[ti + 1]);
  args.splice(ti, 2);
  if (!Number.isInteger(threads) || threads < 1 || threads > 64) { console.error('deno.mjs: --threads takes an integer in [1, 64]'); Deno.exit(2); }
}
const [dist, portArg] = args;
if (!dist) { console.error('usage: deno run --allow-read --allow-net edge/deno.mjs DIST [PORT] [--threads N]'); Deno.exit(2); }
const base = new URL(dist.endsWith('/') ? dist : dist + '/', `file://${Deno.cwd()}/`);
// Deno has a node-style `process`, so Emscripten 3.1.6's glue takes its node branch: it calls require() and reads
// __dirname (as in node, wasm/embedtune.mjs does the same)
const { createRequire } = await import('node:module');
globalThis.require ??= createRequire(import.meta.url);
globalThis.__dirname ??= new URL('.', base).pathname;
const { createApp } = await import(new URL('handler.mjs', base).href);
const { files } = JSON.parse(await Deno.readTextFile(new URL('assets.json', base)));
const read = async (rel) => (await Deno.readFile(new URL(rel, base))).buffer;
const model = {};
for (const [key, rel] of Object.entries(files.model)) model[key] = await read(rel);
const index = files.index ? await read(files.index) : null;
let createCore;
if (threads > 1) {
  const { loadCore } = await import(new URL('embedtune.mjs', base).href);
  createCore = async () => {
    const r = await loadCore({ threads });
    if (r.threads !== threads) throw new Error(`the threaded core is not available here (got ${r.threads} thread(s))`);
    return r.M;
  };
} else {
  const { default: createEmbedtune } = await import(new URL('embedtune-core-st.mjs', base).href);
  const wasmModule = await WebAssembly.compile(await Deno.readFile(new URL('embedtune-core-st.wasm', base)));
  createCore = (moduleArg) => createEmbedtune({
    ...moduleArg,
    locateFile: (p) => p,
    instantiateWasm(imports, receive) {
      WebAssembly.instantiate(wasmModule, imports).then((inst) => receive(inst, wasmModule));
      return {};
    },
  });
}
const app = createApp({ model, index, threads, createCore });
const port = Number(portArg || 8788);
Deno.serve({ hostname: '127.0.0.1', port, onListen: ({ port }) => console.log(`embedtune (deno, ${threads} thread${threads > 1 ? 's' : ''}) on http://127.0.0.1:${port}`) }, app.fetch);
