// deno.mjs - the same service (edge/handler.mjs) under Deno:
//   deno run --allow-read=DIST --allow-net=127.0.0.1 edge/deno.mjs DIST [PORT]
// DIST is the folder tools/build_edge.sh assembles (the Worker's files). Deno may compile wasm from bytes, so
// the core is instantiated from embedtune-core-st.wasm read here; the rest is the Worker's code.
const [dist, portArg] = Deno.args;
if (!dist) { console.error('usage: deno run --allow-read --allow-net edge/deno.mjs DIST [PORT]'); Deno.exit(2); }
const base = new URL(dist.endsWith('/') ? dist : dist + '/', `file://${Deno.cwd()}/`);
// Deno has a node-style `process`, so Emscripten 3.1.6's glue takes its node branch: it calls require() and reads
// __dirname (as in node, wasm/embedtune.mjs does the same)
const { createRequire } = await import('node:module');
globalThis.require ??= createRequire(import.meta.url);
globalThis.__dirname ??= new URL('.', base).pathname;
const { createApp } = await import(new URL('handler.mjs', base).href);
const { default: createEmbedtune } = await import(new URL('embedtune-core-st.mjs', base).href);
const { files } = JSON.parse(await Deno.readTextFile(new URL('assets.json', base)));
const read = async (rel) => (await Deno.readFile(new URL(rel, base))).buffer;
const model = {};
for (const [key, rel] of Object.entries(files.model)) model[key] = await read(rel);
const index = files.index ? await read(files.index) : null;
const wasmBytes = await Deno.readFile(new URL('embedtune-core-st.wasm', base));
const wasmModule = await WebAssembly.compile(wasmBytes);
const app = createApp({
  model,
  index,
  createCore: (moduleArg) => createEmbedtune({
    ...moduleArg,
    locateFile: (p) => p,
    instantiateWasm(imports, receive) {
      WebAssembly.instantiate(wasmModule, imports).then((inst) => receive(inst, wasmModule));
      return {};
    },
  }),
});
const port = Number(portArg || 8788);
Deno.serve({ hostname: '127.0.0.1', port, onListen: ({ port }) => console.log(`embedtune (deno) on http://127.0.0.1:${port}`) }, app.fetch);
