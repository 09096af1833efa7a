// worker.mjs - runs Embedtune (wasm/embedtune.mjs) off the page's thread. Messages:
//   {id, op, args, progress}  ->  {id, result} | {id, error, code} | {id, progress: true, done, total}
// ops: load {files, opts} -> info; encode {texts, opts} -> Float32Array; setCorpus {corpus, opts} -> n;
//      search {query, k, mode} -> hits; matchTerms {query, texts} -> [[[start, end), ...], ...]; exportFiles {opts} -> {path: Uint8Array}; tokenize {text} -> string[];
//      previewPairs {bytes, name} -> preview; readPassages {bytes, name} -> string[];
//      finetune {data, name, args, corpus?: {bytes, name}} -> {result, files, output}
//      (progress: {id, progress: true, stats: {phase, done, total, ...}});
//      init {flag}: an Int32Array on a SharedArrayBuffer; a call whose id <= flag[0] is cancelled at its
//      next progress check (encode batch, finetune step), so the page can stop a running call.
// Works as a module Web Worker and as a node worker_threads Worker.
import { Embedtune, shutdown } from './embedtune.mjs';

let post, model = null, cancelFlag = null;
if (typeof self !== 'undefined' && typeof self.postMessage === 'function' && typeof WorkerGlobalScope !== 'undefined') {
  post = (m, t) => self.postMessage(m, t || []);
  self.onmessage = (ev) => handle(ev.data);
} else {
  const { parentPort } = await import('node:worker_threads');
  post = (m, t) => parentPort.postMessage(m, t || []);
  parentPort.on('message', handle);
}

async function handle(msg) {
  const { id, op, args = {} } = msg;
  const cancelled = () => !!cancelFlag && Atomics.load(cancelFlag, 0) >= id;
  const onProgress = (done, total) => { if (msg.progress) post({ id, progress: true, done, total }); return cancelled(); };
  try {
    let result, transfer = [];
    switch (op) {
      case 'init': cancelFlag = args.flag || null; result = !!cancelFlag; break;
      case 'previewPairs': need(); result = model.previewPairs(args.bytes, args.name, args.maxRows); break;
      case 'finetune': {
        need();
        const onStats = (st) => { if (msg.progress) post({ id, progress: true, stats: st }); return cancelled(); };
        result = model.finetune(args.data, args.name, args.args || [], { onProgress: onStats, corpus: args.corpus });
        result.info = model.info;
        transfer = Object.values(result.files).map((b) => b.buffer);
        break;
      }
      case 'load':
        if (model) model.dispose();
        model = null;
        model = await Embedtune.load(args.files, args.opts || {});
        result = model.info;
        break;
      case 'encode':
        need();
        result = model.encode(args.texts, { ...(args.opts || {}), onProgress });
        transfer = [result.buffer];
        break;
      case 'setCorpus': need(); result = model.setCorpus(args.corpus, { ...(args.opts || {}), onProgress }); break;
      case 'search': need(); result = model.search(args.query, args.k, args.mode); break;
      case 'exportFiles':
        need();
        result = model.exportFiles(args.opts || {});
        transfer = Object.values(result).map((b) => b.buffer);
        break;
      case 'tokenize': need(); result = model.tokenize(args.text); break;
      case 'readPassages': need(); result = model.readPassages(args.bytes, args.name); break;
      case 'matchTerms': need(); result = model.matchTerms(args.query, args.texts); break;
      case 'trainBegin': need(); result = model.trainBegin(args.jsonl, args.cfg || {}); break;
      case 'trainResume': need(); result = model.trainResume(args.files || {}); break;
      case 'trainRun':
        need();
        result = model.trainRun(args.steps, msg.progress ? (stats) => { post({ id, progress: true, stats }); return false; } : undefined);
        break;
      case 'trainCheckpoint':
        need();
        result = model.trainCheckpoint();
        if (result) transfer = Object.values(result).map((b) => b.buffer);
        break;
      case 'trainEnd': need(); result = model.trainEnd(); break;
      case 'shutdown': if (model) model.dispose(); model = null; await shutdown(); result = true; break;
      default: throw new Error(`worker: unknown op '${op}'`);
    }
    post({ id, result }, transfer);
  } catch (e) {
    post({ id, error: e && e.message ? e.message : String(e), code: e && e.code });
  }
}

function need() { if (!model) throw new Error('no model loaded (call load first)'); }
