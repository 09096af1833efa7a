// app.mjs - the embedtune page: its state, the flows (model, data, search index, the run, search, download) and the
// wiring. The work runs in wasm/worker.mjs (EmbedtuneWorker): reading and checking the pairs file, the held-out
// split, mining, experts, training and the before/after evaluation are the C library's `embedtune finetune` (the
// same command as natively), search is `embedtune search`'s hybrid engine. The views are modules: ui.mjs (helpers,
// formats), files.mjs (data and files, the zip), trainview.mjs (settings and progress), chart.mjs (the loss),
// evalview.mjs (before/after), searchview.mjs (results, snippets, vectors), compare.mjs (two runs side by side),
// storage.mjs (the kept runs). User content is only ever put into the page with textContent (never as HTML).
import { ADAPTER_FILES, EmbedtuneWorker, TOKENIZER_PATHS, adapterInfo, canUseThreads } from './wasm/embedtune.mjs';
import { displayText } from './snippet.mjs';
import { $, el, fmtBytes, fmtTime, setStatus } from './ui.mjs';
import { MODEL_FILE_NAMES, MODEL_KEYS, adapterFilesFromListing, addModelKeys, droppedFiles, makeZip, modelFilesFromListing, readFileBytes, readListing, saveBlob, showData } from './files.mjs';
import { LORA_OPTS, LORA_TARGETS, checkSettings, checkTrainable, finetuneArgs, newRun, onRunProgress, resetPhaseList, settings, stepProgress, updateSettingsNote } from './trainview.mjs';
import { renderEval } from './evalview.mjs';
import { drawChart } from './chart.mjs';
import { fillDims, hitItem, searchVectors, vectorsText } from './searchview.mjs';
import { fillRunPickers, renderCompare } from './compare.mjs';
import { openRunStore } from './storage.mjs';

const PREVIEW_ROWS = 50;
addModelKeys(TOKENIZER_PATHS); // folders without vocab.txt (tokenizer.json, a .model, vocab.json + merges.txt)

const state = {
  worker: null, info: null, modelName: '', modelSource: null, baseFiles: null, trained: false,
  data: null,              // {bytes, name, preview (et_wasm_pairs_preview + passages)}
  extra: null,             // {bytes, name, texts}: the optional corpus file (passages without questions)
  corpus: null,            // {texts}: the passages the worker's search index holds
  corpusJob: null,         // the running passage encoding {texts, promise}
  training: false, run: null, result: null, // run: the last run's progress (trainview.mjs newRun); result: its --json report
  runStore: null, runs: [], // the kept runs (storage.mjs) for Compare runs
  startAdapters: [],       // LoRA adapter folders loaded with the model ("Add a LoRA adapter folder"): merged into it
  adapter: null,           // {files, name}: the adapter folder the page offers for download (the last "Adapter only" run's, or the loaded one)
};

// ------------------------------------------------------------------ isolation / threads
function showIsolation() {
  const box = $('isolation');
  if (canUseThreads()) return;
  box.hidden = false;
  box.textContent = 'This page is not cross-origin isolated (crossOriginIsolated is false), so the browser does not ' +
    'allow SharedArrayBuffer, which WebAssembly threads need. Everything still works on ONE thread, only slower. ' +
    'To use all cores, serve the page with the headers Cross-Origin-Opener-Policy: same-origin and ' +
    'Cross-Origin-Embedder-Policy: require-corp (tools/serve.sh does).';
}

// ------------------------------------------------------------------ model loading

async function loadModel(files, source, name, { corpus = true, adapters = [], adapterName = '' } = {}) {
  const tokenizer = files.vocab || Object.keys(TOKENIZER_PATHS).some((k) => files[k]);
  const missing = ['config', 'vocab', 'safetensors'].filter((k) => (k === 'vocab' ? !tokenizer : !files[k]));
  if (missing.length) {
    const names = { config: 'config.json', vocab: 'a tokenizer (vocab.txt, tokenizer.json, sentencepiece.bpe.model or vocab.json + merges.txt)',
      safetensors: 'model.safetensors' };
    throw new Error(`the model folder lacks ${missing.map((k) => names[k]).join(', ')}`);
  }
  document.body.dataset.model = 'loading';
  setStatus('model-status', `Loading ${name}…`);
  const old = state.worker;
  state.worker = null;
  if (old) old.terminate().catch(() => {});
  const t0 = performance.now();
  const w = await EmbedtuneWorker.load(files, { adapters }); // the adapters merged in by the C loader (et_lora_apply_dir)
  state.worker = w;
  state.info = w.info;
  state.baseFiles = files;
  state.modelSource = source;
  state.modelName = name;
  state.trained = false;
  state.startAdapters = adapters;
  state.startAdapterName = adapterName;
  state.adapter = adapters.length ? { files: adapters[adapters.length - 1], name: adapterName || 'adapter' } : null;
  state.corpus = null;
  state.corpusJob = null;
  const i = w.info;
  const dl = $('model-info');
  dl.replaceChildren();
  for (const [k, v] of [['model', name], ['embedding size', i.dim], ['layers', i.layers], ['vocabulary', i.vocabSize],
    ['max tokens', i.maxLength], ['pooling', i.pooling + (i.normalize ? ' + normalize' : '')],
    ['threads', i.threads + (canUseThreads() ? '' : ' (not isolated: one thread)')], ['SIMD', i.simd],
    ...(adapters.length ? [['LoRA adapter', `${adapterName || 'adapter'}: ${adapterText(adapterInfo(adapters[adapters.length - 1]))}, merged in`]] : [])]) {
    dl.append(el('dt', k), el('dd', v));
  }
  $('btn-adapter-clear').hidden = !adapters.length;
  fillDims(i.dim);
  $('engine-info').textContent = `${i.simd}, ${i.threads} thread${i.threads > 1 ? 's' : ''}`;
  setStatus('model-status', `Loaded ${name}${adapters.length ? ` with the LoRA adapter ${adapterName || ''}` : ''} in ${((performance.now() - t0) / 1000).toFixed(1)} s.`, 'good');
  document.body.dataset.model = 'ready';
  updateButtons();
  showAdapter();
  if (corpus && state.extra && !state.extra.texts) await setExtra(state.extra.bytes, state.extra.name, { encode: false }).catch(() => {});
  if (state.data && corpus) {
    if (!state.data.preview) await setData(state.data.bytes, state.data.name).catch((e) => setStatus('data-status', e.message, 'bad'));
    else await encodeCorpus();
  } else if (corpus && state.extra?.texts) await encodeCorpus();
}

async function fetchBundled() {
  const r = await fetch('models/default.json');
  if (!r.ok) throw new Error(`models/default.json: HTTP ${r.status}`);
  const d = await r.json();
  if (!d.name) throw new Error('no bundled model on this server');
  const files = {};
  await Promise.all(d.files.map(async (f) => {
    const key = MODEL_KEYS[f];
    if (!key) return;
    const rr = await fetch(d.base + f);
    if (!rr.ok) throw new Error(`${d.base}${f}: HTTP ${rr.status}`);
    files[key] = new Uint8Array(await rr.arrayBuffer());
  }));
  return { files, name: d.name };
}

async function loadBundled() {
  try {
    const { files, name } = await fetchBundled();
    await loadModel(files, { kind: 'bundled', name }, `${name} (bundled)`);
  } catch (e) {
    document.body.dataset.model = 'error';
    setStatus('model-status', `Could not load the bundled model: ${e.message}`, 'bad');
  }
}

async function loadUserModel(fileList) {
  try {
    const listing = await readListing(fileList, ADAPTER_FILES);
    const files = modelFilesFromListing(listing);
    if (!files.config && Object.keys(listing).some((p) => p.endsWith('adapter_config.json')))
      throw new Error('this is a LoRA adapter folder, not a model: load its base model first, then add the adapter with "Add a LoRA adapter folder"');
    const first = Object.keys(listing)[0] || '';
    const name = first.includes('/') ? first.split('/')[0] : 'your model';
    await loadModel(files, { kind: 'user', name }, name);
  } catch (e) {
    document.body.dataset.model = state.worker ? 'ready' : 'error';
    setStatus('model-status', `Could not load that model: ${e.message}`, 'bad');
  }
}

/** A LoRA adapter folder for the loaded model (its base): the model is loaded again with the adapter merged in by the
 * command's own code (et_lora_apply_dir, as `encode --model BASE --adapter DIR`); no adapter: the base alone. */
async function loadAdapter(fileList) {
  if (!state.baseFiles) return;
  try {
    let adapters = [], adapterName = '';
    if (fileList) {
      const listing = await readListing(fileList, ADAPTER_FILES);
      adapters = [adapterFilesFromListing(listing, ADAPTER_FILES)];
      const first = Object.keys(listing)[0] || '';
      adapterName = first.includes('/') ? first.split('/')[0] : 'adapter';
    }
    await loadModel(state.baseFiles, state.modelSource, state.modelName, { adapters, adapterName });
  } catch (e) {
    document.body.dataset.model = state.worker ? 'ready' : 'error';
    setStatus('model-status', `Could not load that adapter: ${e.message}`, 'bad');
  }
}

/** "r 8, alpha 16, on query, value, 49.6 KB" (adapterInfo: the folder's adapter_config.json and size) */
const adapterText = (a) => `r ${a.r}, alpha ${a.alpha}, on ${Array.isArray(a.targets) ? a.targets.join(', ') : a.targets}, ${fmtBytes(a.bytes)}`;

/** The base_model_name_or_path a new adapter names (finetune --lora-base): the bundled model as the repository's
 * folder (models/NAME, so `embedtune encode --model ADAPTER` finds it from the repository's root), a picked folder by
 * its name; a model loaded with an adapter is the base of the next one as the merged model the page downloads. */
function loraBaseName() {
  const src = state.modelSource || { name: 'model' };
  if (state.startAdapters.length) return `${folderName(false)}`;
  return src.kind === 'bundled' ? `models/${src.name}` : src.name;
}

// ------------------------------------------------------------------ the pairs file (read by the C library)

async function setData(bytes, name) {
  state.data = { bytes, name, preview: null };
  state.result = null;
  renderEval(null);
  if (!state.worker) { setStatus('data-status', `${name}: waiting for the model…`); updateButtons(); return; }
  const preview = await state.worker.previewPairs(bytes, name, PREVIEW_ROWS);
  if (state.data?.bytes !== bytes) return; // another file came meanwhile
  state.data.preview = preview;
  showData(state.data);
  document.body.dataset.data = preview.rows ? 'ready' : 'empty';
  updateButtons();
  updateSettingsNote();
  if (preview.rows) await encodeCorpus();
}

// ------------------------------------------------------------------ the optional corpus file (passages without questions)
// Read by the C library as `finetune --corpus` reads it (a BEIR corpus.jsonl, JSONL with "text", or one passage
// per line); searched beside the pairs' passages, and the run adapts on it (finetune --corpus).
async function setExtra(bytes, name, { encode = true } = {}) {
  state.extra = { bytes, name, texts: null };
  if (!state.worker) { setStatus('corpus-status', `${name}: waiting for the model…`); return; }
  try {
    const texts = await state.worker.readPassages(bytes, name);
    if (state.extra?.bytes !== bytes) return;
    state.extra.texts = texts;
    setStatus('corpus-status', `${name}: ${texts.length} passages, searched beside your pairs' passages; the run adapts on them (finetune --corpus).`, texts.length ? 'good' : 'bad');
    document.body.dataset.extra = 'ready';
  } catch (e) {
    state.extra = null;
    document.body.dataset.extra = 'error';
    setStatus('corpus-status', e.message, 'bad');
  }
  $('btn-corpus-clear').hidden = !state.extra;
  if (encode) await encodeCorpus();
}

function clearExtra() {
  state.extra = null;
  $('btn-corpus-clear').hidden = true;
  setStatus('corpus-status', '');
  delete document.body.dataset.extra;
  encodeCorpus();
}

/** What the search box searches: the pairs' distinct passages, then the corpus file's (repeats dropped). */
const searchTexts = () => [...new Set([...(state.data?.preview?.passages || []), ...(state.extra?.texts || [])])];

// ------------------------------------------------------------------ search corpus (the passages)
// One encoding job at a time; Train cancels a running one (the worker checks a shared flag after every
// batch) instead of queueing behind it.
async function encodeCorpus() {
  const texts = searchTexts(), w = state.worker;
  if (!texts.length || !w) return;
  const job = { texts };
  state.corpusJob = job;
  state.corpus = null;
  document.body.dataset.corpus = 'encoding';
  setStatus('search-status', `Encoding ${texts.length} passages for search…`);
  updateButtons();
  // progress: the encoding (texts), then the BM25 index (docs), each with its count and ETA (stepProgress's clocks);
  // state().indexSteps keeps each step's last count
  const steps = { steps: {}, stepKey: null }, head = `Encoding ${texts.length} passages for search…`;
  state.indexSteps = steps.steps;
  let shown = 0;
  const onProgress = (done, total, step) => {
    if (state.corpusJob !== job) return false;
    const now = performance.now(), unit = step === 'BM25 index' ? 'docs' : 'texts';
    const eta = stepProgress({ phase: 'index', step, done, total, unit }, steps, now);
    if (now - shown < 250 && done < total) return false;
    shown = now;
    setStatus('search-status', `${head} ${step}: ${done} / ${total} ${unit}${Number.isFinite(eta) ? ` · ETA ${fmtTime(eta)}` : ''}`);
    return false;
  };
  try {
    const { dim, int8 } = searchVectors();
    job.promise = w.setCorpus(texts, { maxLength: corpusMaxLen(), dim, int8, onProgress });
    await job.promise;
    if (state.corpusJob !== job) return;
    state.corpus = { texts, dim, int8 };
    document.body.dataset.corpus = 'ready';
    document.body.dataset.vectors = `${dim}:${int8 ? 'int8' : 'f32'}`; // what the index holds (the tests wait on it)
    setStatus('search-status', `${texts.length} passages ready for search (${state.trained ? 'tuned' : 'starting'} model${vectorsText(state.corpus)}).`);
  } catch (e) {
    if (state.corpusJob !== job) return;
    document.body.dataset.corpus = e.code === 8 ? 'cancelled' : 'error';
    setStatus('search-status', e.code === 8 ? 'Passage encoding stopped (training started).' : `Encoding failed: ${e.message}`, e.code === 8 ? '' : 'bad');
  } finally {
    if (state.corpusJob === job) state.corpusJob = null;
    updateButtons();
  }
}
const corpusMaxLen = () => +$('opt-maxlen').value || 0;

// ------------------------------------------------------------------ the run (embedtune finetune in the worker)

async function runTraining() {
  const d = state.data, s = settings(), w = state.worker;
  const err = checkTrainable(state.data?.preview) || checkSettings(s);
  if (err) { setStatus('train-status', err, 'bad'); return; }
  if (s.lora) s.loraBase = loraBaseName();
  state.training = true;
  state.stopRequested = false;
  state.result = null;
  const run = newRun();
  state.run = run;
  document.body.dataset.train = 'running';
  document.body.dataset.phase = 'starting';
  renderEval(null);
  drawChart($('loss-chart'), run.loss, 0);
  updateButtons();
  // a running passage encoding (the search box's) must not hold the run up: stop it
  if (state.corpusJob) {
    const job = state.corpusJob;
    setStatus('train-status', w.cancel() ? 'Stopping the passage encoding to start training…' : 'Waiting for the passage encoding to finish…');
    await job.promise?.catch(() => {});
  } else setStatus('train-status', 'Starting…');
  state.corpus = null; // the run replaces the worker's model (and with it the search index)
  updateButtons();
  run.t0 = performance.now();
  resetPhaseList();
  try {
    if (state.trained) { // start from the loaded (not the tuned) model, with the adapter loaded with it
      await loadModel(state.baseFiles, state.modelSource, state.modelName, { corpus: false, adapters: state.startAdapters, adapterName: state.startAdapterName });
    }
    setStatus('train-status', 'Running embedtune finetune in the worker…');
    const args = finetuneArgs(s);
    state.lastArgs = args;
    const corpus = state.extra?.texts ? { bytes: state.extra.bytes, name: state.extra.name } : undefined;
    state.lastCorpus = corpus?.name ?? null;
    const r = await state.worker.finetune(d.bytes, d.name, args, { onProgress: (st) => onRunProgress(st, run), corpus });
    state.result = r.result;
    state.info = r.info;
    state.trained = true;
    state.output = r.output;
    // an "Adapter only" run: its --out is the PEFT adapter folder; the worker's model is the start with it merged in
    state.adapter = s.lora ? { files: r.files, name: `${folderName(false)}-lora-r${adapterInfo(r.files).r}` } : null;
    showAdapter();
    $('train-progress').value = 1;
    document.body.dataset.phase = 'done';
    setStatus('train-status', `Done: ${r.result.counts.steps} steps in ${fmtTime((performance.now() - run.t0) / 1000)} (training ${fmtTime(r.result.seconds.train)})` +
      `${s.lora ? `; LoRA adapter ${adapterText(adapterInfo(r.files))} (the base's model.safetensors: ${fmtBytes(state.baseFiles.safetensors?.length ?? 0)})` : ''}.`, 'good');
    renderEval(state.result, { corpusFile: state.lastCorpus });
    await saveRun({ when: Date.now(), data: d.name, corpus: state.lastCorpus, model: state.modelName, args, result: r.result });
    document.body.dataset.train = 'done';
    await encodeCorpus();
  } catch (e) {
    const stopped = e.code === 8;
    const refused = /needs about .* the memory budget is/.test(e.message); // the up-front memory estimate (C)
    setStatus('train-status', stopped ? 'Stopped. The starting model is loaded again.' : `${refused ? 'Refused before starting' : 'Training failed'}: ${e.message}`, stopped ? '' : 'bad');
    document.body.dataset.train = stopped ? 'stopped' : 'error';
    if (state.worker && !state.corpus) encodeCorpus();
  } finally {
    state.training = false;
    updateButtons();
    showFiles();
    showAdapter();
  }
}

async function stopTraining() {
  state.stopRequested = true;
  setStatus('train-status', 'Stopping…');
  if (!state.worker.cancel()) { // not isolated: no shared flag, stop the worker and load the model again
    await loadModel(state.baseFiles, state.modelSource, state.modelName, { adapters: state.startAdapters, adapterName: state.startAdapterName });
  }
}

// ------------------------------------------------------------------ compare two runs (web/compare.mjs)
async function saveRun(run) {
  if (!state.runStore) return;
  try { await state.runStore.add(run); } catch (e) { setStatus('cmp-status', `Could not save the run: ${e.message}`, 'bad'); }
  await refreshRuns({ latest: true });
}

/** Fill the two run pickers; latest: pick the newest two runs (the new one second). */
async function refreshRuns({ latest = false } = {}) {
  const runs = state.runStore ? await state.runStore.list() : [];
  state.runs = runs;
  fillRunPickers(runs, latest);
  showCompare();
}
const showCompare = () => renderCompare(state.runs, { persistent: state.runStore?.persistent !== false });

// ------------------------------------------------------------------ search (hybrid / dense / BM25) with snippets

async function search() {
  const q = $('search-q').value.trim();
  const ol = $('search-results');
  if (!q || !state.corpus) return;
  const mode = $('search-mode').value, w = state.worker;
  const hits = await w.search(q, 10, mode);
  const texts = hits.map((h) => displayText(state.corpus.texts[h.index]));
  const spans = await w.matchTerms(q, texts);
  ol.replaceChildren(...hits.map((h, i) => hitItem(h, texts[i], spans[i], mode)));
  const r = state.info?.retrieval;
  const how = mode === 'hybrid' ? `hybrid: BM25 + the ${state.trained ? 'tuned' : 'starting'} model, ${r ? `${r.fusion}${r.source === 'retrieval.json' ? ' (the model\'s retrieval.json)' : ' (default fusion)'}` : 'default fusion'}`
    : mode === 'bm25' ? 'BM25' : `cosine (${state.trained ? 'tuned' : 'starting'} model)`;
  const vec = mode === 'bm25' ? '' : vectorsText(state.corpus);
  ol.dataset.mode = mode;
  setStatus('search-status', `${hits.length} best of ${state.corpus.texts.length} passages by ${how}${vec ? ` (${vec.slice(2)})` : ''}.`);
}

// ------------------------------------------------------------------ download (zip, STORE + CRC32)

async function exportFiles() {
  const files = await state.worker.exportFiles({ dtype: $('opt-dtype').value });
  for (const k of Object.keys(files)) if (k.endsWith('/')) delete files[k];
  return files;
}
/** The download's folder name: the model's, -tuned after a run, -merged with a loaded adapter (trained: false gives
 * the starting model's). */
const folderName = (trained = state.trained) => `${(state.modelSource?.name || 'model').replace(/[^A-Za-z0-9._-]+/g, '_')}${trained ? '-tuned' : state.startAdapters.length ? '-merged' : ''}`;

/** A folder {path: bytes} as one .zip named top.zip with everything under top/ (the model, and a LoRA adapter). */
function downloadFolder(files, top) {
  const z = {};
  for (const [k, v] of Object.entries(files)) if (!k.endsWith('/')) z[`${top}/${k}`] = v;
  saveBlob(makeZip(z), `${top}.zip`);
}
const downloadZip = async () => downloadFolder(await exportFiles(), folderName());
const downloadAdapter = () => downloadFolder(state.adapter.files, state.adapter.name.replace(/[^A-Za-z0-9._-]+/g, '_'));

/** The adapter line of the download section: its size beside the whole model's. */
function showAdapter() {
  const a = state.adapter, p = $('adapter-info');
  $('btn-adapter-zip').hidden = p.hidden = !a;
  $('btn-zip').textContent = state.info?.adapters?.length ? 'Download the merged model (.zip)' : 'Download .zip';
  if (!a) return;
  const i = adapterInfo(a.files);
  p.textContent = `LoRA adapter ${a.name}: ${Object.keys(a.files).length} files, ${fmtBytes(i.bytes)} (r ${i.r}, alpha ${i.alpha}, on ${[].concat(i.targets).join(', ')}; base ${i.base}); ` +
    `the base's model.safetensors: ${fmtBytes(state.baseFiles?.safetensors?.length ?? 0)}.`;
}

async function showFiles() {
  const ul = $('file-links');
  ul.replaceChildren();
  if (!state.worker) return;
  const names = [...MODEL_FILE_NAMES, ...Object.entries(TOKENIZER_PATHS).filter(([k]) => state.baseFiles?.[k]).map(([, n]) => n)];
  for (const n of names.filter((x) => !x.endsWith('/'))) {
    const li = el('li'), b = el('button', n);
    b.type = 'button';
    b.title = `Download ${n} on its own`;
    b.addEventListener('click', async () => {
      const files = await exportFiles();
      if (!files[n]) { b.disabled = true; b.title = 'this model has no such file'; return; }
      saveBlob(new Blob([files[n]]), n.replace('/', '_'));
    });
    li.append(b);
    ul.append(li);
  }
}

// ------------------------------------------------------------------ wiring
function updateButtons() {
  const ready = !!state.worker && !state.training;
  $('btn-train').disabled = !ready || !state.data?.preview?.rows;
  $('btn-stop').disabled = !state.training;
  $('btn-zip').disabled = !ready;
  $('btn-adapter-zip').disabled = !ready || !state.adapter;
  $('adapter-folder').disabled = state.training || !state.worker;
  $('search-q').disabled = $('btn-search').disabled = !ready || !state.corpus;
  $('btn-bundled').disabled = state.training;
  $('model-folder').disabled = state.training;
}

function wire() {
  $('btn-bundled').addEventListener('click', loadBundled);
  $('model-folder').addEventListener('change', (e) => { if (e.target.files.length) loadUserModel([...e.target.files]); });
  const drop = $('model-drop');
  drop.addEventListener('keydown', (e) => { if ((e.key === 'Enter' || e.key === ' ') && !state.training) { e.preventDefault(); $('model-folder').click(); } });
  drop.addEventListener('dragover', (e) => { e.preventDefault(); drop.classList.add('over'); });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', async (e) => { e.preventDefault(); drop.classList.remove('over'); if (!state.training) loadUserModel(await droppedFiles(e.dataTransfer)); });
  $('data-file').addEventListener('change', async (e) => {
    const f = e.target.files[0];
    if (!f) return;
    try { await setData(await readFileBytes(f), f.name); } catch (x) { setStatus('data-status', `${f.name}: ${x.message}`, 'bad'); document.body.dataset.data = 'error'; }
    e.target.value = '';
  });
  $('corpus-file').addEventListener('change', async (e) => {
    const f = e.target.files[0];
    if (!f) return;
    try { await setExtra(await readFileBytes(f), f.name); } catch (x) { setStatus('corpus-status', `${f.name}: ${x.message}`, 'bad'); }
    e.target.value = '';
  });
  $('btn-corpus-clear').addEventListener('click', clearExtra);
  $('btn-paste').addEventListener('click', () => setData(new TextEncoder().encode($('data-text').value.replace(/^\ufeff/, '')), 'pasted text')
    .catch((x) => { setStatus('data-status', `pasted text: ${x.message}`, 'bad'); document.body.dataset.data = 'error'; }));
  $('opt-moe').addEventListener('change', () => { $('opt-experts').disabled = !$('opt-moe').checked; });
  $('opt-lora').addEventListener('change', () => {
    for (const id of ['opt-lora-r', ...LORA_OPTS.map(([i]) => i), ...LORA_TARGETS.map((t) => `opt-lora-t-${t}`)]) $(id).disabled = !$('opt-lora').checked;
  });
  $('adapter-folder').addEventListener('change', (e) => { if (e.target.files.length) loadAdapter([...e.target.files]); e.target.value = ''; });
  $('btn-adapter-clear').addEventListener('click', () => loadAdapter(null));
  $('opt-loss').addEventListener('change', updateSettingsNote);
  $('btn-train').addEventListener('click', () => runTraining());
  $('btn-stop').addEventListener('click', () => stopTraining());
  $('btn-search').addEventListener('click', () => search().catch((x) => setStatus('search-status', x.message, 'bad')));
  $('search-q').addEventListener('keydown', (e) => { if (e.key === 'Enter') search().catch((x) => setStatus('search-status', x.message, 'bad')); });
  const revector = () => { if (!state.training) encodeCorpus().then(() => { if ($('search-q').value.trim() && state.corpus) return search(); }).catch(() => {}); };
  $('search-dim').addEventListener('change', revector);
  $('search-int8').addEventListener('change', revector);
  $('search-mode').addEventListener('change', () => { if ($('search-q').value.trim()) search().catch(() => {}); });
  $('cmp-a').addEventListener('change', showCompare);
  $('cmp-b').addEventListener('change', showCompare);
  $('cmp-diff-only').addEventListener('change', showCompare);
  $('btn-cmp-clear').addEventListener('click', async () => { await state.runStore?.clear(); await refreshRuns(); });
  $('btn-zip').addEventListener('click', () => downloadZip().catch((x) => setStatus('train-status', `Download failed: ${x.message}`, 'bad')));
  $('btn-adapter-zip').addEventListener('click', () => { try { downloadAdapter(); } catch (x) { setStatus('train-status', `Download failed: ${x.message}`, 'bad'); } });
}

// test hook (the browser tests compare the page with the native CLI)
window.__embedtune = {
  encode: async (texts) => Array.from(await state.worker.encode(texts)),
  state: () => ({ model: state.modelName, trained: state.trained, result: state.result, args: state.lastArgs, corpusFile: state.lastCorpus,
    steps: state.run?.loss.length ?? 0, loss: state.run?.loss.map((p) => p.loss) ?? [], epochs: state.run?.loss.map((p) => p.epoch) ?? [],
    phases: state.run?.phases ?? [], phaseTimes: state.run?.times ?? null, stepTimes: state.run?.steps ?? null, indexSteps: state.indexSteps ?? null, rows: state.data?.preview?.rows ?? 0, errors: state.data?.preview?.errors ?? [], info: state.info, output: state.output,
    adapter: state.adapter ? { name: state.adapter.name, files: Object.keys(state.adapter.files), ...adapterInfo(state.adapter.files) } : null }),
  passages: () => state.corpus?.texts ?? null,
  search: (q, mode, k = 10) => state.worker.search(q, k, mode),
  zip: async () => { const f = await exportFiles(); const b = makeZip(f); return Array.from(new Uint8Array(await b.arrayBuffer())); },
};

wire();
showIsolation();
drawChart($('loss-chart'), [], 0);
updateSettingsNote();
updateButtons();
state.runStore = await openRunStore().catch(() => null);
await refreshRuns();
await loadBundled();
