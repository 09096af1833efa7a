// worker.mjs - runs Embedtune (wasm/embedtune.mjs) off the page's thread, for EmbedtuneWorker. Messages:
//   {id, op, args, progress}  ->  {id, result} | {id, error, code} | {id, progress: true, done, total} | {id, progress: true, stats}
// The operations, their arguments, progress and transferred results are the rows of WORKER_OPS (embedtune.mjs),
// which workerHandle dispatches by; init {flag} (an Int32Array on a SharedArrayBuffer) lets the page cancel a
// running call: a call whose id <= flag[0] stops at its next progress check (encode batch, finetune step).
// Works as a module Web Worker and as a node worker_threads Worker.
import { workerHandle } from './embedtune.mjs';

const state = { model: null, cancelFlag: null };
let post;
if (typeof self !== 'undefined' && typeof self.postMessage === 'function' && typeof WorkerGlobalScope !== 'undefined') {
  post = (m, t) => self.postMessage(m, t || []);
  self.onmessage = (ev) => workerHandle(state, ev.data, post);
} else {
  const { parentPort } = await import('node:worker_threads');
  post = (m, t) => parentPort.postMessage(m, t || []);
  parentPort.on('message', (m) => workerHandle(state, m, post));
}
