// app.mjs - a page that uses the installed npm package the way an app without a bundler would: an ES module import
// from node_modules (an import map would need an inline script, which the server's Content-Security-Policy forbids).
// On the page's thread: Embedtune with 1 thread (encode, and a hybrid search over an index file); in a Web Worker:
// EmbedtuneWorker with 2 threads (the threaded core: the server sends COOP/COEP, so the page is cross-origin
// isolated). Everything is fetched from this origin. The result goes to window.__result for the test driver.
import { Embedtune, EmbedtuneWorker, canUseThreads } from './node_modules/embedtune/embedtune.mjs';

const status = document.getElementById('status');
async function get(p) {
  const r = await fetch(p);
  if (!r.ok) throw new Error(`${p}: HTTP ${r.status}`);
  return new Uint8Array(await r.arrayBuffer());
}
try {
  const m = './model/';
  const files = {
    config: await get(m + 'config.json'), vocab: await get(m + 'vocab.txt'), safetensors: await get(m + 'model.safetensors'),
    modules: await get(m + 'modules.json'), pooling: await get(m + '1_Pooling/config.json'),
  };
  const texts = new TextDecoder().decode(await get('./texts.txt')).trimEnd().split('\n');
  const et = await Embedtune.load(files, { threads: 1 });
  const e1 = et.encode(texts);
  const ix = et.openIndex(await get('./index.etix'));
  const hits = ix.search(['text editor for the terminal'], { k: 3, mode: 'hybrid' })[0].map((h) => h.id);
  const w = await EmbedtuneWorker.load(files, { threads: 2 });
  const e2 = await w.encode(texts);
  window.__result = {
    isolated: globalThis.crossOriginIsolated === true, canUseThreads: canUseThreads(), simd: et.info.simd, dim: et.dim,
    threadsPage: et.info.threads, threadsWorker: w.info.threads, e1: Array.from(e1), e2: Array.from(e2), hits,
  };
  ix.dispose();
  et.dispose();
  await w.terminate();
  status.textContent = 'done';
} catch (e) {
  window.__result = { error: String((e && e.stack) || e) };
  status.textContent = 'failed';
}
