// app.mjs - the embedtune page. The work runs in wasm/worker.mjs (EmbedtuneWorker): reading and checking the
// pairs file, the held-out split, mining, experts, training and the before/after evaluation are the C library's
// `embedtune finetune` (the same command as natively), search is its dense / BM25 search. This file does the
// UI: files in, progress, the before/after table from the command's --json report, the loss chart, search
// snippets and the zip writer. User content is only ever put into the page with textContent (never as HTML).
import { EmbedtuneWorker, TOKENIZER_PATHS, canUseThreads } from './wasm/embedtune.mjs';
import { displayText, snippetOf } from './snippet.mjs';
import { METRIC_NAMES, compareRows, openRunStore, runLabel } from './compare.mjs';

const $ = (id) => document.getElementById(id);
const MAX_FILE = 256 << 20, PREVIEW_ROWS = 50;

const state = {
  worker: null, info: null, modelName: '', modelSource: null, baseFiles: null, trained: false,
  data: null,              // {bytes, name, preview (et_wasm_pairs_preview + passages)}
  extra: null,             // {bytes, name, texts}: the optional corpus file (passages without questions)
  corpus: null,            // {texts}: the passages the worker's search index holds
  corpusJob: null,         // the running passage encoding {texts, promise}
  training: false, lossHistory: [], phases: [], result: null, // result: the run's --json report
};

// ------------------------------------------------------------------ small DOM helpers (textContent only)
function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text != null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}
function setStatus(id, text, kind) {
  const e = $(id);
  e.textContent = text;
  e.className = 'status' + (kind ? ' ' + kind : '');
}
const fmt = (x, d = 4) => (x == null || Number.isNaN(x) ? '–' : Number(x).toFixed(d));
function fmtTime(s) {
  if (!Number.isFinite(s)) return '–';
  s = Math.max(0, Math.round(s));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  return h ? `${h} h ${m} min` : m ? `${m} min ${r} s` : `${r} s`;
}
function fmtBytes(n) { return n > 1 << 20 ? `${(n / (1 << 20)).toFixed(1)} MB` : n > 1024 ? `${(n / 1024).toFixed(1)} KB` : `${n} B`; }

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
const MODEL_KEYS = {
  'config.json': 'config', 'vocab.txt': 'vocab', 'model.safetensors': 'safetensors', 'modules.json': 'modules',
  '1_Pooling/config.json': 'pooling', 'sentence_bert_config.json': 'sbertConfig', 'tokenizer_config.json': 'tokenizerConfig',
  'retrieval.json': 'retrieval',
  ...Object.fromEntries(Object.entries(TOKENIZER_PATHS).map(([k, n]) => [n, k])), // tokenizer.json, .model, vocab.json + merges.txt
};

/** {relativePath: Uint8Array} (maybe under one top folder) -> load() files. */
function modelFilesFromListing(listing) {
  let paths = Object.keys(listing).map((p) => p.replace(/\\/g, '/').replace(/^\/+/, ''));
  const tops = new Set(paths.map((p) => (p.includes('/') ? p.split('/')[0] : '')));
  const strip = tops.size === 1 && !tops.has(''); // everything under one folder: drop it
  const files = {};
  Object.keys(listing).forEach((orig, i) => {
    let p = paths[i];
    if (strip) p = p.slice(p.indexOf('/') + 1);
    if (MODEL_KEYS[p]) files[MODEL_KEYS[p]] = listing[orig];
  });
  return files;
}

async function loadModel(files, source, name, { corpus = true } = {}) {
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
  const w = await EmbedtuneWorker.load(files);
  state.worker = w;
  state.info = w.info;
  state.baseFiles = files;
  state.modelSource = source;
  state.modelName = name;
  state.trained = false;
  state.corpus = null;
  state.corpusJob = null;
  const i = w.info;
  const dl = $('model-info');
  dl.replaceChildren();
  for (const [k, v] of [['model', name], ['embedding size', i.dim], ['layers', i.layers], ['vocabulary', i.vocabSize],
    ['max tokens', i.maxLength], ['pooling', i.pooling + (i.normalize ? ' + normalize' : '')],
    ['threads', i.threads + (canUseThreads() ? '' : ' (not isolated: one thread)')], ['SIMD', i.simd]]) {
    dl.append(el('dt', k), el('dd', v));
  }
  fillDims(i.dim);
  $('engine-info').textContent = `${i.simd}, ${i.threads} thread${i.threads > 1 ? 's' : ''}`;
  setStatus('model-status', `Loaded ${name} in ${((performance.now() - t0) / 1000).toFixed(1)} s.`, 'good');
  document.body.dataset.model = 'ready';
  updateButtons();
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

async function readListing(fileList) {
  const listing = {};
  for (const f of fileList) {
    const rel = f.webkitRelativePath || f.relPath || f.name;
    const base = rel.split('/').pop();
    if (!Object.keys(MODEL_KEYS).some((k) => rel.endsWith(k) || base === k.split('/').pop())) continue;
    listing[rel] = new Uint8Array(await f.arrayBuffer());
  }
  return listing;
}

async function loadUserModel(fileList) {
  try {
    const listing = await readListing(fileList);
    const files = modelFilesFromListing(listing);
    const first = Object.keys(listing)[0] || '';
    const name = first.includes('/') ? first.split('/')[0] : 'your model';
    await loadModel(files, { kind: 'user', name }, name);
  } catch (e) {
    document.body.dataset.model = state.worker ? 'ready' : 'error';
    setStatus('model-status', `Could not load that model: ${e.message}`, 'bad');
  }
}

/** Files from a drop (folders walked with webkitGetAsEntry). */
async function droppedFiles(dt) {
  const out = [];
  const entries = [...dt.items].map((it) => (it.webkitGetAsEntry ? it.webkitGetAsEntry() : null)).filter(Boolean);
  if (!entries.length) return [...dt.files];
  const walk = async (entry, prefix) => {
    if (entry.isFile) {
      const f = await new Promise((res, rej) => entry.file(res, rej));
      f.relPath = prefix + entry.name;
      out.push(f);
    } else if (entry.isDirectory) {
      const reader = entry.createReader();
      for (;;) {
        const batch = await new Promise((res, rej) => reader.readEntries(res, rej));
        if (!batch.length) break;
        for (const e of batch) await walk(e, prefix + entry.name + '/');
      }
    }
  };
  for (const e of entries) await walk(e, '');
  return out;
}

// ------------------------------------------------------------------ the pairs file (read by the C library)
// The bytes go to the worker as they are; `embedtune finetune`'s own reader (src/data.h) validates them,
// names bad lines, and the data.md split marks the held-out rows (wasm/et_wasm.c et_wasm_pairs_preview).
async function readFileBytes(f) {
  if (f.size > MAX_FILE) throw new Error(`${f.name} is larger than ${fmtBytes(MAX_FILE)}`);
  return new Uint8Array(await f.arrayBuffer());
}

function showData(d) {
  const p = d.preview;
  const nTest = p.test, errs = p.errors.length ? p.errors : [];
  setStatus('data-status', `${d.name}: ${p.rows} pairs (${p.rows - nTest} train, ${nTest} held out)` +
    `${p.K ? `, ${p.K} expert score${p.K > 1 ? 's' : ''}` : ''}${p.has_label ? ', labels' : ''}` +
    `${p.bad ? `, ${p.bad} bad line${p.bad > 1 ? 's' : ''}` : ''}.`, p.rows ? (p.bad ? '' : 'good') : 'bad');
  const ul = $('data-error-list');
  ul.replaceChildren(...errs.map((e) => el('li', e)));
  if (p.bad > errs.length) ul.append(el('li', `… and ${p.bad - errs.length} more`));
  if (p.bad) ul.append(el('li', 'Training stops at the first bad line (as embedtune finetune does): fix them first.', 'hint'));
  $('data-errors').hidden = !p.bad;
  const tb = $('preview').tBodies[0];
  tb.replaceChildren();
  for (const r of p.preview) {
    const tr = el('tr');
    const q = el('td', r.query), ps = el('td', r.passage);
    q.title = r.query; ps.title = r.passage;
    tr.append(el('td', r.row), el('td', r.test ? 'held-out' : 'train', r.test ? 'split-test' : ''), q, ps,
      el('td', r.label ?? ''), el('td', r.scores ? r.scores.map((x) => fmt(x, 3)).join(', ') : ''));
    tb.append(tr);
  }
  $('preview').hidden = !p.rows;
  $('preview').caption.textContent = p.rows > p.preview.length ? `Preview (first ${p.preview.length} of ${p.rows} rows)` : 'Preview';
}

async function setData(bytes, name) {
  state.data = { bytes, name, preview: null };
  state.result = null;
  renderEval();
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
  try {
    const { dim, int8 } = searchVectors();
    job.promise = w.setCorpus(texts, { maxLength: corpusMaxLen(), dim, int8 });
    await job.promise;
    if (state.corpusJob !== job) return;
    state.corpus = { texts, dim, int8 };
    document.body.dataset.corpus = 'ready';
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
/** The search's vectors: {dim: the Matryoshka cut (0 = full; search --dim), int8: int8 inference (search --int8)}. */
const searchVectors = () => ({ dim: +$('search-dim').value || 0, int8: $('search-int8').checked });
const vectorsText = (c) => (c.dim || c.int8 ? `, ${c.dim ? `${c.dim}-value vectors` : 'full vectors'}${c.int8 ? ', int8' : ''}` : '');

/** The vector sizes offered for the model: full, then halves down to 16 values. */
function fillDims(dim) {
  const sel = $('search-dim'), opts = [el('option', `full (${dim})`)];
  opts[0].value = '0';
  for (let d = dim >> 1; d >= 16; d >>= 1) { const o = el('option', String(d)); o.value = String(d); opts.push(o); }
  sel.replaceChildren(...opts);
  sel.value = '0';
}

// ------------------------------------------------------------------ settings -> finetune options
// Empty fields are left to `embedtune finetune`'s own (automatic) defaults.
const OPTS = [ // [input id, option, kind]
  ['opt-epochs', '--epochs', 'int'], ['opt-lr', '--lr', 'num'], ['opt-batch', '--batch', 'int'], ['opt-maxlen', '--max-len', 'int'],
  ['opt-seed', '--seed', 'int'], ['opt-negatives', '--negatives', 'int'], ['opt-refresh', '--refresh-every', 'str'],
  ['opt-mine', '--mine-range', 'str'], ['opt-warmup', '--warmup', 'str'], ['opt-tau', '--tau', 'num'], ['opt-dev', '--dev', 'str'],
  ['opt-adapt-pairs', '--adapt-pairs', 'int'], ['opt-mem', '--mem-budget', 'int'],
];
function settings() {
  const s = { loss: $('opt-loss').value, moe: $('opt-moe').checked, experts: +$('opt-experts').value | 0, bm25: $('opt-bm25').checked };
  for (const [id] of OPTS) s[id] = $(id).value.trim();
  return s;
}
function finetuneArgs(s) {
  const a = ['--loss', s.loss];
  for (const [id, opt] of OPTS) if (s[id] !== '') a.push(opt, s[id]);
  if (s.moe) a.push('--moe-experts', String(s.experts));
  if (!s.bm25) a.push('--no-bm25');
  return a;
}
function updateSettingsNote() {
  const loss = $('opt-loss').value;
  const notes = {
    infonce: 'InfoNCE: each query must pick its passage among the batch and its ANCE-mined hard negatives (the starting model\'s ranks 2..100 minus its positives, re-mined with the model being trained 4 times per epoch).',
    clp: 'CLP: InfoNCE with ANCE-mined negatives, each with the query it answers, plus a penalty that keeps those negatives close to their own query.',
    mse: 'MSE trains the cosine toward the label; rows without labels get label 1 plus hard negatives (label 0) ranked by BM25.',
  };
  $('settings-note').textContent = notes[loss] || 'Soft labels come from the experts: BM25 and the file\'s own score columns; rows without labels get label 1 plus BM25-ranked negatives with label 0.';
}

// ------------------------------------------------------------------ the run (embedtune finetune in the worker)
const PHASE_TEXT = { load: 'Loading the model', parse: 'Reading and checking the pairs, held-out split', eval_before: 'Evaluating the starting model (dense + BM25)',
  mine: 'Mining hard negatives (ANCE)', experts: 'Scoring with the experts (BM25)', train: 'Training', refresh: 'Re-mining negatives with the current model',
  eval_after: 'Evaluating the tuned model', done: 'Done' };

/** The phase list's entry for a phase: its text, then "12 s" when past, "ETA 1 min 3 s" while it runs. */
function phaseLabel(phase, run) {
  const t = run.times[phase];
  if (!t) return PHASE_TEXT[phase] || phase;
  return `${PHASE_TEXT[phase] || phase} · ${t.end != null ? fmtTime(t.end - t.start) : t.eta != null ? `ETA ${fmtTime(t.eta)}` : 'running'}`;
}

function onRunProgress(st, run) {
  const now = performance.now();
  if (st.phase !== run.phase) {
    if (run.phase && run.times[run.phase]) run.times[run.phase].end = now / 1000;
    run.phase = st.phase; run.phaseT0 = now; run.phaseDone0 = st.done; state.phases.push(st.phase);
    if (!run.times[st.phase]) run.times[st.phase] = { start: now / 1000 };
    else { run.times[st.phase].start = now / 1000 - (run.times[st.phase].end - run.times[st.phase].start); delete run.times[st.phase].end; }
  }
  document.body.dataset.phase = st.phase;
  const li = $('phase-list');
  run.seen.add(st.phase);
  let text = PHASE_TEXT[st.phase] || st.phase;
  if (st.total > 0) {
    $('train-progress').value = st.done / st.total;
    const el_ = (now - run.phaseT0) / 1000, per = (st.done - run.phaseDone0) > 0 ? el_ / (st.done - run.phaseDone0) : NaN;
    const unit = st.phase === 'train' ? 'step' : 'text', eta = per * (st.total - st.done);
    if (Number.isFinite(eta)) run.times[st.phase].eta = eta;
    text += `: ${st.done} / ${st.total} ${unit}s · ETA ${fmtTime(eta)}`;
  } else $('train-progress').removeAttribute('value');
  if (now - (run.lastList || 0) > 250 || st.phase === 'done') { // the list: each phase with its time or ETA
    run.lastList = now;
    for (const x of li.children) {
      const p = x.dataset.phase;
      x.className = p === st.phase ? 'current' : run.seen.has(p) ? 'past' : '';
      x.textContent = phaseLabel(p, run);
    }
  }
  if (st.phase === 'train' && Number.isFinite(st.loss)) {
    state.lossHistory.push({ step: st.done, loss: st.loss, epoch: st.epoch });
    state.totalSteps = st.total;
    text += ` · epoch ${st.epoch + 1} · loss ${fmt(st.loss)} · lr ${st.lr.toExponential(2)} · ${st.examplesPerS.toFixed(1)} queries/s`;
    if (now - (run.lastDraw || 0) > 100 || st.done === st.total) { run.lastDraw = now; drawChart(); }
  }
  $('train-eta').textContent = `${text} · elapsed ${fmtTime((now - run.t0) / 1000)}`;
}

async function runTraining() {
  const err = checkTrainable();
  if (err) { setStatus('train-status', err, 'bad'); return; }
  const d = state.data, s = settings(), w = state.worker;
  state.training = true;
  state.stopRequested = false;
  state.result = null;
  state.lossHistory = [];
  state.phases = [];
  document.body.dataset.train = 'running';
  document.body.dataset.phase = 'starting';
  renderEval();
  drawChart();
  updateButtons();
  // a running passage encoding (the search box's) must not hold the run up: stop it
  if (state.corpusJob) {
    const job = state.corpusJob;
    setStatus('train-status', w.cancel() ? 'Stopping the passage encoding to start training…' : 'Waiting for the passage encoding to finish…');
    await job.promise?.catch(() => {});
  } else setStatus('train-status', 'Starting…');
  state.corpus = null; // the run replaces the worker's model (and with it the search index)
  updateButtons();
  const run = { t0: performance.now(), phase: null, seen: new Set(), times: {} };
  state.run = run;
  $('phase-list').replaceChildren(...Object.keys(PHASE_TEXT).filter((p) => p !== 'done').map((p) => { const li = el('li', PHASE_TEXT[p]); li.dataset.phase = p; return li; }));
  try {
    if (state.trained) { // start from the loaded (not the tuned) model
      await loadModel(state.baseFiles, state.modelSource, state.modelName, { corpus: false });
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
    $('train-progress').value = 1;
    document.body.dataset.phase = 'done';
    setStatus('train-status', `Done: ${r.result.counts.steps} steps in ${fmtTime((performance.now() - run.t0) / 1000)} (training ${fmtTime(r.result.seconds.train)}).`, 'good');
    renderEval();
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
  }
}

async function stopTraining() {
  state.stopRequested = true;
  setStatus('train-status', 'Stopping…');
  if (!state.worker.cancel()) { // not isolated: no shared flag, stop the worker and load the model again
    await loadModel(state.baseFiles, state.modelSource, state.modelName);
  }
}

function checkTrainable() {
  const d = state.data;
  if (!d || !d.preview || !d.preview.rows) return 'load a pairs file first';
  if (d.preview.rows - d.preview.test < 2) return 'at least 2 training rows are needed (after the held-out split)';
  return null;
}

// ------------------------------------------------------------------ before / after (from the run's --json report)

/** Table rows of a finetune --json report: [{metric, bm25, before, after, change, hybridBefore, hybridAfter}];
 * hybrid (retrieval data): the default fusion with the starting model, the learned fusion with the tuned one. */
export function evalRows(r) {
  if (!r) return [];
  const hb = r.hybrid?.before?.hybrid_default, ha = r.hybrid?.after?.hybrid_learned;
  return Object.keys(r.before).map((k) => ({ key: k, metric: METRIC_NAMES[k] || k, bm25: r.bm25?.[k] ?? null, before: r.before[k], after: r.after[k],
    change: r.after[k] != null && r.before[k] != null ? r.after[k] - r.before[k] : null, hybridBefore: hb?.[k] ?? null, hybridAfter: ha?.[k] ?? null }));
}

function renderEval() {
  const t = $('eval-table'), r = state.result;
  t.tBodies[0].replaceChildren();
  if (!r) { t.hidden = true; setStatus('eval-status', ''); return; }
  const hasHybrid = !!r.hybrid?.after, hasBm25 = !!r.bm25;
  const head = el('tr');
  head.append(el('th', 'metric'));
  if (hasBm25) head.append(el('th', 'BM25'));
  head.append(el('th', 'dense before'), el('th', 'dense after'), el('th', 'change'));
  if (hasHybrid) head.append(el('th', 'hybrid before'), el('th', 'hybrid after'));
  t.tHead.replaceChildren(head);
  for (const x of evalRows(r)) {
    const tr = el('tr');
    tr.dataset.metric = x.key;
    tr.append(el('td', x.metric));
    if (hasBm25) tr.append(el('td', fmt(x.bm25)));
    tr.append(el('td', fmt(x.before)), el('td', fmt(x.after)),
      el('td', x.change == null ? '' : (x.change >= 0 ? '+' : '') + fmt(x.change), x.change == null ? '' : x.change > 0 ? 'up' : x.change < 0 ? 'down' : ''));
    if (hasHybrid) tr.append(el('td', fmt(x.hybridBefore)), el('td', fmt(x.hybridAfter)));
    t.tBodies[0].append(tr);
  }
  t.hidden = false;
  const c = r.counts;
  const among = c.eval_passages ? `queries searched among ${c.eval_passages} passages (your file's${state.lastCorpus ? ' and the corpus file\'s' : ''})` : 'queries searched among all passages of the file';
  setStatus('eval-status', `${c.test} held-out ${r.eval_kind === 'retrieval' ? among : 'pairs'}; ` +
    `trained on ${c.train} ${r.eval_kind === 'retrieval' ? 'queries' : 'rows'} (${c.examples} examples, ${c.steps} steps` +
    `${c.mined_negatives ? `, ${c.mined_negatives} mined negatives, ${c.refreshes} refresh${c.refreshes === 1 ? '' : 'es'}` : ''}` +
    `${r.settings.experts?.length ? `, experts: ${r.settings.experts.join(', ')}` : ''}).` +
    (hasHybrid ? ` Hybrid: BM25 + the model fused (${r.hybrid.before.learned_fusion} before; after: ${r.hybrid.after.learned_fusion}, ${r.hybrid.after.how}).` : '') +
    (r.memory ? ` Memory: about ${Math.round(r.memory.estimate_mib)} MB planned of a ${Math.round(r.memory.budget_mib)} MB budget.` : ''));
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
  const a = $('cmp-a'), b = $('cmp-b'), prev = [a.value, b.value];
  for (const s of [a, b]) s.replaceChildren(...runs.map((r) => { const o = el('option', runLabel(r)); o.value = String(r.id); return o; }));
  if (runs.length) {
    const ids = runs.map((r) => String(r.id));
    a.value = !latest && ids.includes(prev[0]) ? prev[0] : ids[Math.max(0, ids.length - 2)];
    b.value = !latest && ids.includes(prev[1]) ? prev[1] : ids[ids.length - 1];
  }
  a.disabled = b.disabled = runs.length < 2;
  $('btn-cmp-clear').disabled = !runs.length;
  document.body.dataset.runs = String(runs.length);
  renderCompare();
}

function renderCompare() {
  const t = $('cmp-table'), runs = state.runs || [];
  const ra = runs.find((r) => String(r.id) === $('cmp-a').value), rb = runs.find((r) => String(r.id) === $('cmp-b').value);
  t.tBodies[0].replaceChildren();
  if (runs.length < 2 || !ra || !rb) {
    t.hidden = true;
    setStatus('cmp-status', runs.length === 1 ? 'One run saved: train again (other settings, another file) to compare two.'
      : runs.length ? '' : `No saved runs yet${state.runStore?.persistent === false ? ' (this browser keeps them for this visit only)' : ''}.`);
    return;
  }
  const head = el('tr');
  head.append(el('th', 'setting or metric'), el('th', `Run ${ra.id}`), el('th', `Run ${rb.id}`), el('th', `Run ${rb.id} − Run ${ra.id}`));
  t.tHead.replaceChildren(head);
  const only = $('cmp-diff-only').checked;
  let group = null, ndiff = 0;
  const fmtV = (v) => (typeof v === 'number' ? (Number.isInteger(v) ? String(v) : Math.abs(v) < 1e-3 && v !== 0 ? v.toExponential(2) : fmt(v)) : Array.isArray(v) ? (v.join(', ') || '–') : typeof v === 'boolean' ? (v ? 'yes' : 'no') : v == null || v === '' ? '–' : String(v));
  for (const x of compareRows(ra, rb)) {
    ndiff += x.differs;
    if (only && !x.differs) continue;
    if (x.group !== group) {
      group = x.group;
      const g = el('tr', null, 'group'), th = el('th', group === 'run' ? 'run' : group === 'settings' ? 'settings used' : group);
      th.colSpan = 4; th.scope = 'colgroup';
      g.append(th);
      t.tBodies[0].append(g);
    }
    const tr = el('tr', null, x.differs ? 'differs' : '');
    tr.dataset.key = `${x.group}:${x.key}`;
    const th = el('th', x.name); th.scope = 'row';
    tr.append(th, el('td', fmtV(x.a)), el('td', fmtV(x.b)),
      el('td', x.diff == null ? (x.differs ? 'differs' : '') : (x.diff > 0 ? '+' : '') + fmtV(x.diff), x.diff > 0 ? 'up' : x.diff < 0 ? 'down' : ''));
    t.tBodies[0].append(tr);
  }
  t.hidden = false;
  setStatus('cmp-status', `Run ${ra.id} and run ${rb.id}: ${ndiff} row${ndiff === 1 ? '' : 's'} differ.`);
}

// ------------------------------------------------------------------ loss chart (hand-drawn canvas)
function drawChart() {
  const cv = $('loss-chart'), g = cv.getContext('2d');
  const W = cv.width, H = cv.height, L = 52, R = 12, T = 14, B = 30;
  g.clearRect(0, 0, W, H);
  g.font = '11px system-ui, sans-serif';
  g.fillStyle = '#5a6475';
  const h = state.lossHistory;
  if (!h.length) { g.fillText('The training loss will appear here.', L, H / 2); return; }
  const total = Math.max(state.totalSteps || h[h.length - 1].step, 2);
  let lo = Infinity, hi = -Infinity;
  for (const p of h) { lo = Math.min(lo, p.loss); hi = Math.max(hi, p.loss); }
  if (hi - lo < 1e-6) { hi += 0.5; lo -= 0.5; }
  const pad = (hi - lo) * 0.05; lo = lo >= 0 ? Math.max(0, lo - pad) : lo - pad; hi += pad;
  const x = (s) => L + (W - L - R) * (s - 1) / (total - 1), y = (v) => T + (H - T - B) * (1 - (v - lo) / (hi - lo));
  g.strokeStyle = '#d9dee7'; g.lineWidth = 1;
  for (let i = 0; i <= 4; i++) {
    const v = lo + (hi - lo) * i / 4, yy = Math.round(y(v)) + 0.5;
    g.beginPath(); g.moveTo(L, yy); g.lineTo(W - R, yy); g.stroke();
    g.fillText(v.toFixed(3), 4, yy + 4);
  }
  g.fillText('step 1', L, H - 10);
  const lbl = `${total}`; g.fillText(lbl, W - R - g.measureText(lbl).width, H - 10);
  g.fillText('optimizer step (light: loss, dark: moving average)', L + (W - L - R) / 2 - 120, H - 10);
  g.strokeStyle = '#9fb5e8'; g.beginPath();
  h.forEach((p, i) => (i ? g.lineTo(x(p.step), y(p.loss)) : g.moveTo(x(p.step), y(p.loss)))); g.stroke();
  g.strokeStyle = '#2456c7'; g.lineWidth = 2; g.beginPath();
  let ema = h[0].loss;
  h.forEach((p, i) => { ema = i ? 0.85 * ema + 0.15 * p.loss : p.loss; i ? g.lineTo(x(p.step), y(ema)) : g.moveTo(x(p.step), y(ema)); });
  g.stroke();
}

// ------------------------------------------------------------------ search (hybrid / dense / BM25) with snippets
// Ranking is the C hybrid engine (src/hybrid.h, as `embedtune search --mode`). Display: a title line + a
// two-line snippet (the window of the passage with the most query words) with the query's words marked,
// and "show more" for the whole passage. Which words match is BM25's token rule, asked of the C library
// (src/bm25.h et_bm25_match_spans through the worker), so the marks are exactly the words BM25 scored.
/** text -> DOM nodes with the spans in <mark> (text nodes only: user content never becomes HTML) */
function marked(text, hits) {
  const out = [];
  let at = 0;
  for (const [a, b] of hits) {
    if (a < at) continue;
    if (a > at) out.push(document.createTextNode(text.slice(at, a)));
    out.push(el('mark', text.slice(a, b)));
    at = b;
  }
  if (at < text.length) out.push(document.createTextNode(text.slice(at)));
  return out;
}


function hitItem(h, t, hits, mode) {
  const li = el('li'), sn = snippetOf(t, hits);
  const head = el('div', null, 'hit-title');
  head.append(el('span', `${mode === 'dense' ? h.score.toFixed(3) : h.score.toFixed(mode === 'bm25' ? 2 : 3)}`, 'score'), ...marked(sn.title, sn.titleHits));
  li.append(head);
  if (sn.snippet) {
    const body = el('div', null, 'hit-snippet');
    body.append(...marked(sn.snippet, sn.snippetHits));
    li.append(body);
    if (sn.more) {
      const b = el('button', 'show more', 'more');
      b.type = 'button';
      b.setAttribute('aria-expanded', 'false');
      b.addEventListener('click', () => {
        const open = b.getAttribute('aria-expanded') !== 'true';
        body.replaceChildren(...(open ? marked(t, hits) : marked(sn.snippet, sn.snippetHits)));
        body.classList.toggle('full', open);
        b.textContent = open ? 'show less' : 'show more';
        b.setAttribute('aria-expanded', String(open));
      });
      li.append(b);
    }
  }
  return li;
}

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
const CRC = (() => { const t = new Uint32Array(256); for (let n = 0; n < 256; n++) { let c = n; for (let k = 0; k < 8; k++) c = c & 1 ? 0xEDB88320 ^ (c >>> 1) : c >>> 1; t[n] = c >>> 0; } return t; })();
function crc32(b) { let c = 0xFFFFFFFF; for (let i = 0; i < b.length; i++) c = CRC[(c ^ b[i]) & 0xFF] ^ (c >>> 8); return (c ^ 0xFFFFFFFF) >>> 0; }

/** files {path: Uint8Array} -> zip bytes (STORE, no compression). */
export function makeZip(files) {
  const enc = new TextEncoder(), parts = [], central = [];
  const d = new Date(), dosTime = (d.getHours() << 11) | (d.getMinutes() << 5) | (d.getSeconds() >> 1);
  const dosDate = ((d.getFullYear() - 1980) << 9) | ((d.getMonth() + 1) << 5) | d.getDate();
  let off = 0;
  for (const [path, data] of Object.entries(files)) {
    const name = enc.encode(path), crc = crc32(data);
    const h = new DataView(new ArrayBuffer(30));
    h.setUint32(0, 0x04034b50, true); h.setUint16(4, 20, true); h.setUint16(6, 0x0800, true); h.setUint16(8, 0, true);
    h.setUint16(10, dosTime, true); h.setUint16(12, dosDate, true); h.setUint32(14, crc, true);
    h.setUint32(18, data.length, true); h.setUint32(22, data.length, true); h.setUint16(26, name.length, true); h.setUint16(28, 0, true);
    parts.push(new Uint8Array(h.buffer), name, data);
    const c = new DataView(new ArrayBuffer(46));
    c.setUint32(0, 0x02014b50, true); c.setUint16(4, 20, true); c.setUint16(6, 20, true); c.setUint16(8, 0x0800, true);
    c.setUint16(10, 0, true); c.setUint16(12, dosTime, true); c.setUint16(14, dosDate, true); c.setUint32(16, crc, true);
    c.setUint32(20, data.length, true); c.setUint32(24, data.length, true); c.setUint16(28, name.length, true);
    c.setUint32(42, off, true);
    central.push(new Uint8Array(c.buffer), name);
    off += 30 + name.length + data.length;
  }
  const csize = central.reduce((s, p) => s + p.length, 0), n = Object.keys(files).length;
  const e = new DataView(new ArrayBuffer(22));
  e.setUint32(0, 0x06054b50, true); e.setUint16(8, n, true); e.setUint16(10, n, true); e.setUint32(12, csize, true); e.setUint32(16, off, true);
  return new Blob([...parts, ...central, new Uint8Array(e.buffer)], { type: 'application/zip' });
}

function saveBlob(blob, name) {
  const a = document.createElement('a');
  a.href = URL.createObjectURL(blob);
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 30000);
}

async function exportFiles() {
  const files = await state.worker.exportFiles({ dtype: $('opt-dtype').value });
  for (const k of Object.keys(files)) if (k.endsWith('/')) delete files[k];
  return files;
}
const folderName = () => `${(state.modelSource?.name || 'model').replace(/[^A-Za-z0-9._-]+/g, '_')}${state.trained ? '-tuned' : ''}`;

async function downloadZip() {
  const files = await exportFiles(), top = folderName(), z = {};
  for (const [k, v] of Object.entries(files)) z[`${top}/${k}`] = v;
  saveBlob(makeZip(z), `${top}.zip`);
}

async function showFiles() {
  const ul = $('file-links');
  ul.replaceChildren();
  if (!state.worker) return;
  const names = ['config.json', 'vocab.txt', 'model.safetensors', 'modules.json', '1_Pooling/config.json', 'sentence_bert_config.json',
    'tokenizer_config.json', 'special_tokens_map.json', 'config_sentence_transformers.json', 'retrieval.json', '2_Normalize/',
    ...Object.entries(TOKENIZER_PATHS).filter(([k]) => state.baseFiles?.[k]).map(([, n]) => n)];
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
  $('opt-loss').addEventListener('change', updateSettingsNote);
  $('btn-train').addEventListener('click', () => runTraining());
  $('btn-stop').addEventListener('click', () => stopTraining());
  $('btn-search').addEventListener('click', () => search().catch((x) => setStatus('search-status', x.message, 'bad')));
  $('search-q').addEventListener('keydown', (e) => { if (e.key === 'Enter') search().catch((x) => setStatus('search-status', x.message, 'bad')); });
  const revector = () => { if (!state.training) encodeCorpus().then(() => { if ($('search-q').value.trim() && state.corpus) return search(); }).catch(() => {}); };
  $('search-dim').addEventListener('change', revector);
  $('search-int8').addEventListener('change', revector);
  $('search-mode').addEventListener('change', () => { if ($('search-q').value.trim()) search().catch(() => {}); });
  $('cmp-a').addEventListener('change', renderCompare);
  $('cmp-b').addEventListener('change', renderCompare);
  $('cmp-diff-only').addEventListener('change', renderCompare);
  $('btn-cmp-clear').addEventListener('click', async () => { await state.runStore?.clear(); await refreshRuns(); });
  $('btn-zip').addEventListener('click', () => downloadZip().catch((x) => setStatus('train-status', `Download failed: ${x.message}`, 'bad')));
}

// test hook (the browser tests compare the page with the native CLI)
window.__embedtune = {
  encode: async (texts) => Array.from(await state.worker.encode(texts)),
  state: () => ({ model: state.modelName, trained: state.trained, result: state.result, args: state.lastArgs, corpusFile: state.lastCorpus,
    steps: state.lossHistory.length, loss: state.lossHistory.map((p) => p.loss), epochs: state.lossHistory.map((p) => p.epoch),
    phases: state.phases, phaseTimes: state.run?.times ?? null, rows: state.data?.preview?.rows ?? 0, errors: state.data?.preview?.errors ?? [], info: state.info, output: state.output }),
  passages: () => state.corpus?.texts ?? null,
  search: (q, mode, k = 10) => state.worker.search(q, k, mode),
  zip: async () => { const f = await exportFiles(); const b = makeZip(f); return Array.from(new Uint8Array(await b.arrayBuffer())); },
};

wire();
showIsolation();
drawChart();
updateSettingsNote();
updateButtons();
state.runStore = await openRunStore().catch(() => null);
await refreshRuns();
await loadBundled();
