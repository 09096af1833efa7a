// worker.mjs - the Cloudflare Worker (module syntax) serving embedtune: runs under workerd (config.capnp, written by
// tools/build_edge.sh) and wrangler (wrangler.toml). The routes, limits and errors are edge/handler.mjs's.
// The wasm core is imported as a compiled WebAssembly.Module (Workers may not compile wasm from bytes at run
// time) and instantiated through Emscripten's instantiateWasm hook; the model files and the index are data
// modules (ArrayBuffers) listed in assets.mjs, which tools/build_edge.sh generates from what it bundles.
import createEmbedtune from './embedtune-core-st.mjs';
import wasmModule from './embedtune-core-st.wasm';
import { model, index } from './assets.mjs';
import { createApp } from './handler.mjs';

const app = createApp({
  model,
  index,
  createCore: (moduleArg) => createEmbedtune({
    ...moduleArg,
    locateFile: (p) => p, // never used: the module is given below (keeps the glue from resolving import.meta.url)
    instantiateWasm(imports, receive) {
      WebAssembly.instantiate(wasmModule, imports).then((inst) => receive(inst, wasmModule));
      return {};
    },
  }),
});

export default { fetch: (request) => app.fetch(request) };
