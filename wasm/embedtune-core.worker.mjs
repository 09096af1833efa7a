// embedtune-core.worker.mjs - the pthread worker of the threaded core (embedtune-core.mjs) under node and Deno, as an
// ES module. Emscripten 3.1.6 starts each pthread of its node branch (Deno takes it too: it has node's `process`) as a
// node:worker_threads Worker on embedtune-core.worker.js, a script written for CommonJS: it calls require() and reads
// __filename. Where that file is loaded as an ES module it fails (the exact errors):
//   node 20, from the installed npm package (its package.json says "type": "module", so .js files are ES modules):
//     ReferenceError: require is not defined in ES module scope, you can use import instead
//   Deno 2.9 (workers are ES modules in a web-style global):
//     ReferenceError: __filename is not defined
//     TypeError: Cannot set property location of #<DedicatedWorkerGlobalScope> which has only a getter
//       (the worker does Object.assign(global, {self, location, Worker, importScripts, postMessage, performance}))
// wasm/embedtune.mjs points node's and Deno's pthreads here (locateFile): this module supplies require, __filename and
// __dirname as globals and makes those read-only globals writable, then runs Emscripten's worker unchanged. Pages and
// Web Workers use embedtune-core.worker.js directly.
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { dirname } from 'node:path';

const file = fileURLToPath(new URL('./embedtune-core.worker.js', import.meta.url));
globalThis.require ??= createRequire(file);
globalThis.__filename = file;
globalThis.__dirname = dirname(file);
for (const k of ['self', 'location', 'Worker', 'importScripts', 'postMessage', 'performance']) {
  let o = globalThis, d;
  while (o && !(d = Object.getOwnPropertyDescriptor(o, k))) o = Object.getPrototypeOf(o);
  if (d && d.get && !d.set) Object.defineProperty(globalThis, k, { value: globalThis[k], writable: true, configurable: true, enumerable: true });
}
await import('./embedtune-core.worker.js');
