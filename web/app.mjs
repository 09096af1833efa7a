// app.mjs - the embedtune page. All heavy work runs in wasm/worker.mjs (EmbedtuneWorker); this file does the
// UI, parsing and validation of the pairs file, the held-out split, metrics, the loss chart, the zip writer and
// the IndexedDB checkpoints. User content is only ever put into the page with textContent (never as HTML).
import { EmbedtuneWorker, canUseThreads } from './wasm/embedtune.mjs';

const $ = (id) => document.getElementById(id);
const MAX_FILE = 256 << 20, MAX_ROWS = 200000, PREVIEW_ROWS = 50;
const CHECKPOINT_EVERY_MS = 20000;

const state = {
  worker: null, info: null, modelName: '', modelSource: null, baseFiles: null, trained: false,
  data: null,              // {rows, errors, format, name, K, text}
  corpus: null,            // {texts, emb (normalised Float32Array), dim}
  training: false, stop: false, lossHistory: [], before: null, after: null,
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

async function loadModel(files, source, name) {
  const missing = ['config', 'vocab', 'safetensors'].filter((k) => !files[k]);
  if (missing.length) {
    const names = { config: 'config.json', vocab: 'vocab.txt', safetensors: 'model.safetensors' };
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
  const i = w.info;
  const dl = $('model-info');
  dl.replaceChildren();
  for (const [k, v] of [['model', name], ['embedding size', i.dim], ['layers', i.layers], ['vocabulary', i.vocabSize],
    ['max tokens', i.maxLength], ['pooling', i.pooling + (i.normalize ? ' + normalize' : '')],
    ['threads', i.threads + (canUseThreads() ? '' : ' (not isolated: one thread)')], ['SIMD', i.simd]]) {
    dl.append(el('dt', k), el('dd', v));
  }
  $('engine-info').textContent = `${i.simd}, ${i.threads} thread${i.threads > 1 ? 's' : ''}`;
  setStatus('model-status', `Loaded ${name} in ${((performance.now() - t0) / 1000).toFixed(1)} s.`, 'good');
  document.body.dataset.model = 'ready';
  updateButtons();
  if (state.data) await encodeCorpus().catch((e) => setStatus('eval-status', e.message, 'bad'));
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

// ------------------------------------------------------------------ pairs parsing + validation
function wellFormed(s) { return typeof s.isWellFormed === 'function' ? s.isWellFormed() : !/[\ud800-\udfff]/.test(s.replace(/[\ud800-\udbff][\udc00-\udfff]/g, '')); }

function checkText(v, field, line, errors) {
  if (typeof v !== 'string') { errors.push(`line ${line}: field "${field}" must be a string`); return null; }
  if (!v.trim()) { errors.push(`line ${line}: field "${field}" is empty`); return null; }
  if (!wellFormed(v)) { errors.push(`line ${line}: field "${field}" has an invalid Unicode escape (lone surrogate)`); return null; }
  return v.replace(/\0/g, '');
}

function parseJsonl(text) {
  const rows = [], errors = [];
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = i + 1, s = lines[i];
    if (!s.trim()) continue;
    let o;
    try { o = JSON.parse(s); } catch (e) { errors.push(`line ${line}: not valid JSON (${e.message.replace(/^JSON\.parse: /, '').slice(0, 80)})`); continue; }
    if (!o || typeof o !== 'object' || Array.isArray(o)) { errors.push(`line ${line}: expected a JSON object`); continue; }
    const r = { line };
    if (!('query' in o)) { errors.push(`line ${line}: field "query" is missing`); continue; }
    const pk = 'positive' in o ? 'positive' : 'passage' in o ? 'passage' : null;
    if (!pk) { errors.push(`line ${line}: field "positive" (or "passage") is missing`); continue; }
    r.query = checkText(o.query, 'query', line, errors);
    r.positive = checkText(o[pk], pk, line, errors);
    if (r.query == null || r.positive == null) continue;
    if (o.id != null) {
      if (typeof o.id !== 'string' && typeof o.id !== 'number') { errors.push(`line ${line}: field "id" must be a string or a number`); continue; }
      r.id = String(o.id);
    }
    if (o.label != null) {
      if (typeof o.label !== 'number' || !Number.isFinite(o.label) || o.label < 0 || o.label > 1) { errors.push(`line ${line}: field "label" must be a number from 0 to 1`); continue; }
      r.label = o.label;
    }
    if (o.scores != null) {
      if (!Array.isArray(o.scores) || !o.scores.length || o.scores.some((x) => typeof x !== 'number' || !Number.isFinite(x))) { errors.push(`line ${line}: field "scores" must be a non-empty array of numbers`); continue; }
      r.scores = o.scores.slice();
    } else if (o.experts != null) {
      if (typeof o.experts !== 'object' || Array.isArray(o.experts)) { errors.push(`line ${line}: field "experts" must be an object {name: score}`); continue; }
      const v = Object.keys(o.experts).sort().map((k) => o.experts[k]);
      if (!v.length || v.some((x) => typeof x !== 'number' || !Number.isFinite(x))) { errors.push(`line ${line}: field "experts" must map names to numbers`); continue; }
      r.scores = v;
    }
    if (o.negatives != null) {
      if (!Array.isArray(o.negatives)) { errors.push(`line ${line}: field "negatives" must be an array of strings`); continue; }
      const negs = [];
      let bad = false;
      for (const n of o.negatives) { const t = checkText(n, 'negatives', line, errors); if (t == null) { bad = true; break; } negs.push(t); }
      if (bad) continue;
      r.negatives = negs;
    }
    rows.push(r);
  }
  return { rows, errors };
}

/** RFC 4180 CSV (delim ',') or plain TSV (delim '\t'). -> [{fields, line}] */
function splitDelimited(text, delim) {
  const out = [];
  if (delim === '\t') {
    text.split(/\r?\n/).forEach((l, i) => { if (l.trim()) out.push({ fields: l.split('\t'), line: i + 1 }); });
    return out;
  }
  let fields = [], cur = '', q = false, line = 1, start = 1, i = 0, quotedErr = null;
  const push = () => { fields.push(cur); cur = ''; };
  const endRow = () => { push(); if (fields.length > 1 || fields[0].trim()) out.push({ fields, line: start, err: quotedErr }); fields = []; quotedErr = null; start = line; };
  for (; i < text.length; i++) {
    const c = text[i];
    if (q) {
      if (c === '"') { if (text[i + 1] === '"') { cur += '"'; i++; } else q = false; }
      else { if (c === '\n') line++; cur += c; }
    } else if (c === '"') {
      if (cur.length) quotedErr = 'a quote in the middle of an unquoted field';
      q = true;
    } else if (c === delim) push();
    else if (c === '\r' && text[i + 1] === '\n') { /* skip */ }
    else if (c === '\n') { line++; endRow(); }
    else cur += c;
  }
  if (q) quotedErr = 'unterminated quoted field';
  if (cur.length || fields.length) endRow();
  return out;
}

function parseDelimited(text, delim) {
  const rows = [], errors = [];
  const recs = splitDelimited(text, delim);
  if (!recs.length) return { rows, errors: ['the file is empty'] };
  const head = recs[0].fields.map((h) => h.trim().toLowerCase());
  const qi = head.indexOf('query');
  let pi = head.indexOf('passage');
  if (pi < 0) pi = head.indexOf('positive');
  if (qi < 0 || pi < 0) return { rows, errors: [`line ${recs[0].line}: the header needs "query" and "passage" (or "positive") columns`] };
  const li = head.indexOf('label'), ii = head.indexOf('id');
  const si = head.map((_, k) => k).filter((k) => k !== qi && k !== pi && k !== li && k !== ii);
  for (const rec of recs.slice(1)) {
    const { fields: f, line } = rec;
    if (rec.err) { errors.push(`line ${line}: ${rec.err}`); continue; }
    if (f.length !== head.length) { errors.push(`line ${line}: ${f.length} columns but the header has ${head.length}`); continue; }
    const r = { line, query: checkText(f[qi], 'query', line, errors), positive: checkText(f[pi], head[pi], line, errors) };
    if (r.query == null || r.positive == null) continue;
    if (ii >= 0 && f[ii].trim()) r.id = f[ii].trim();
    if (li >= 0 && f[li].trim()) {
      const v = Number(f[li]);
      if (!Number.isFinite(v) || v < 0 || v > 1) { errors.push(`line ${line}: column "label" must be a number from 0 to 1`); continue; }
      r.label = v;
    }
    if (si.length) {
      const v = si.map((k) => Number(f[k]));
      const bad = si.find((k, j) => !f[k].trim() || !Number.isFinite(v[j]));
      if (bad !== undefined) { errors.push(`line ${line}: column "${head[bad]}" must be a number (expert score)`); continue; }
      r.scores = v;
    }
    rows.push(r);
  }
  return { rows, errors };
}

async function sha1Hex(s) {
  const d = new Uint8Array(await crypto.subtle.digest('SHA-1', new TextEncoder().encode(s)));
  return Array.from(d, (b) => b.toString(16).padStart(2, '0')).join('');
}

/** data.md's rule: held out iff int(sha1_hex(key)[0:8], 16) % 100 >= 80; key = id, else the 1-based row number. */
async function isHeldOut(key) { return parseInt((await sha1Hex(key)).slice(0, 8), 16) % 100 >= 80; }

async function parsePairs(text, name) {
  if (text.length > MAX_FILE) return { rows: [], errors: [`the file is larger than ${fmtBytes(MAX_FILE)}`] };
  const first = text.trimStart()[0];
  const ext = (name.match(/\.([a-z0-9]+)$/i) || [])[1]?.toLowerCase();
  let format, res;
  if (ext === 'jsonl' || ext === 'json' || (!ext || ext === 'txt') && first === '{') { format = 'JSONL'; res = parseJsonl(text); }
  else {
    const headLine = text.split(/\r?\n/, 1)[0];
    const delim = ext === 'tsv' || (ext !== 'csv' && headLine.includes('\t')) ? '\t' : ',';
    format = delim === '\t' ? 'TSV' : 'CSV';
    res = parseDelimited(text, delim);
  }
  let { rows, errors } = res;
  if (rows.length > MAX_ROWS) { errors.push(`only the first ${MAX_ROWS} rows are used`); rows = rows.slice(0, MAX_ROWS); }
  const K = rows.find((r) => r.scores)?.scores.length || 0;
  if (K) {
    const keep = [];
    for (const r of rows) {
      if (!r.scores) errors.push(`line ${r.line}: expert scores are missing (earlier rows have ${K})`);
      else if (r.scores.length !== K) errors.push(`line ${r.line}: ${r.scores.length} expert scores but earlier rows have ${K}`);
      else keep.push(r);
    }
    rows = keep;
  }
  for (let i = 0; i < rows.length; i++) {
    rows[i].row = i + 1;
    rows[i].test = await isHeldOut(rows[i].id ?? String(i + 1));
  }
  return { rows, errors, format, name, K, text };
}

function showData(d) {
  const nTest = d.rows.filter((r) => r.test).length;
  const hasLabel = d.rows.some((r) => r.label != null);
  setStatus('data-status', `${d.name}: ${d.format}, ${d.rows.length} pairs (${d.rows.length - nTest} train, ${nTest} held out)` +
    `${d.K ? `, ${d.K} expert score${d.K > 1 ? 's' : ''}` : ''}${hasLabel ? ', labels' : ''}` +
    `${d.errors.length ? `, ${d.errors.length} problem${d.errors.length > 1 ? 's' : ''}` : ''}.`, d.rows.length ? (d.errors.length ? '' : 'good') : 'bad');
  const ul = $('data-error-list');
  ul.replaceChildren(...d.errors.slice(0, 200).map((e) => el('li', e)));
  if (d.errors.length > 200) ul.append(el('li', `… and ${d.errors.length - 200} more`));
  $('data-errors').hidden = !d.errors.length;
  const tb = $('preview').tBodies[0];
  tb.replaceChildren();
  for (const r of d.rows.slice(0, PREVIEW_ROWS)) {
    const tr = el('tr');
    const q = el('td', r.query), p = el('td', r.positive);
    q.title = r.query; p.title = r.positive;
    tr.append(el('td', r.line), el('td', r.test ? 'held-out' : 'train', r.test ? 'split-test' : ''), q, p,
      el('td', r.label ?? ''), el('td', r.scores ? r.scores.map((x) => fmt(x, 3)).join(', ') : ''));
    tb.append(tr);
  }
  $('preview').hidden = !d.rows.length;
  $('preview').caption.textContent = d.rows.length > PREVIEW_ROWS ? `Preview (first ${PREVIEW_ROWS} of ${d.rows.length} rows)` : 'Preview';
}

async function setData(text, name) {
  const d = await parsePairs(text, name);
  state.data = d;
  showData(d);
  document.body.dataset.data = d.rows.length ? 'ready' : 'empty';
  state.before = state.after = null;
  renderEval();
  updateButtons();
  updateSettingsNote();
  if (state.worker && d.rows.length) await encodeCorpus().catch((e) => setStatus('eval-status', e.message, 'bad'));
}

async function readTextFile(f) {
  if (f.size > MAX_FILE) throw new Error(`${f.name} is larger than ${fmtBytes(MAX_FILE)}`);
  const buf = await f.arrayBuffer();
  try { return new TextDecoder('utf-8', { fatal: true }).decode(buf).replace(/^\ufeff/, ''); } catch {
    throw new Error(`${f.name} is not UTF-8 text (save it as UTF-8)`);
  }
}

// ------------------------------------------------------------------ training data for the trainer
function mulberry32(a) {
  return () => { a |= 0; a = a + 0x6D2B79F5 | 0; let t = Math.imul(a ^ a >>> 15, 1 | a); t = t + Math.imul(t ^ t >>> 7, 61 | t) ^ t; return ((t ^ t >>> 14) >>> 0) / 4294967296; };
}

/** Rows for the chosen loss: contrastive rows (infonce/clp) or pairwise labelled rows (mse/soft*). */
function trainRecords(rows, loss, seed) {
  const rnd = mulberry32(seed >>> 0 || 1);
  const pick = (i) => { if (rows.length < 2) return -1; let j; do { j = Math.floor(rnd() * rows.length); } while (j === i || rows[j].query === rows[i].query); return j; };
  if (loss === 'infonce') {
    const allNeg = rows.every((r) => r.negatives && r.negatives.length);
    return rows.map((r) => (allNeg ? { query: r.query, positive: r.positive, negatives: r.negatives } : { query: r.query, positive: r.positive }));
  }
  if (loss === 'clp') { // one negative per query: another row's passage, with that row's query as its own query
    return rows.map((r, i) => { const j = pick(i); return { query: r.query, positive: r.positive, negatives: [rows[j].positive], negative_queries: [rows[j].query] }; });
  }
  const labelled = rows.some((r) => r.label != null);
  const out = [];
  rows.forEach((r, i) => {
    out.push({ query: r.query, positive: r.positive, label: r.label ?? 1, scores: r.scores });
    if (!labelled) { const j = pick(i); out.push({ query: r.query, positive: rows[j].positive, label: 0 }); }
  });
  return out;
}

function checkTrainable() {
  const d = state.data, loss = $('opt-loss').value;
  if (!d || !d.rows.length) return 'load a pairs file first';
  const train = d.rows.filter((r) => !r.test);
  if (train.length < 2) return 'at least 2 training rows are needed (after the held-out split)';
  if (loss === 'clp' && new Set(train.map((r) => r.query)).size < 2) return 'CLP needs at least 2 different queries';
  return null;
}

function updateSettingsNote() {
  const loss = $('opt-loss').value, d = state.data;
  const notes = {
    infonce: 'InfoNCE uses the other passages of the batch as negatives (and the "negatives" of your file when every row has some).',
    clp: 'CLP: each query gets one negative (another row\'s passage) together with that row\'s query.',
    mse: 'MSE trains the cosine toward the label; rows without labels become label 1, plus one random passage with label 0 per row.',
  };
  let t = notes[loss] || '';
  if (loss.startsWith('soft')) {
    const lab = d && d.rows.some((r) => r.label != null);
    t = 'Soft labels are made from expert scores' + (d && d.K && lab ? ` (your file has ${d.K}).` : d && d.K ? ': your file has no labels, so random label-0 pairs are added and the starting model\'s cosine is used as the expert.' : ': your data has none, so the starting model\'s cosine is used as the expert.');
    if (loss !== 'soft1') t += ' Rows without labels become label 1, plus one random passage with label 0 per row.';
  }
  $('settings-note').textContent = t;
}

// ------------------------------------------------------------------ evaluation (JS, from embeddings)
function normalizeRows(emb, dim) {
  for (let i = 0; i < emb.length; i += dim) {
    let s = 0;
    for (let k = 0; k < dim; k++) s += emb[i + k] * emb[i + k];
    s = s > 0 ? 1 / Math.sqrt(s) : 0;
    for (let k = 0; k < dim; k++) emb[i + k] *= s;
  }
  return emb;
}

async function encodeCorpus() {
  const d = state.data;
  const texts = [...new Set(d.rows.map((r) => r.positive))];
  setStatus('eval-status', `Encoding ${texts.length} passages…`);
  const emb = normalizeRows(await state.worker.encode(texts, { maxLength: +$('opt-maxlen').value || 0 }), state.info.dim);
  state.corpus = { texts, emb, index: new Map(texts.map((t, i) => [t, i])) };
  await state.worker.setCorpus(emb);
  setStatus('eval-status', `${texts.length} passages ready for search.`);
  updateButtons();
}

/** Held-out rows' queries against all distinct passages: nDCG@10, MRR@10, Recall@1/10, mean cosine. */
async function evaluate() {
  await encodeCorpus();
  const d = state.data, C = state.corpus, dim = state.info.dim, nd = C.texts.length;
  const qmap = new Map(); // query -> set of relevant passage indices
  for (const r of d.rows) {
    if (r.label != null && r.label < 0.5) continue;
    if (!qmap.has(r.query)) qmap.set(r.query, { rel: new Set(), test: false });
    qmap.get(r.query).rel.add(C.index.get(r.positive));
    if (r.test) qmap.get(r.query).test = true;
  }
  const qs = [...qmap].filter(([, v]) => v.test);
  if (!qs.length) return null;
  const Q = normalizeRows(await state.worker.encode(qs.map(([q]) => q), { maxLength: 64 }), dim);
  let ndcg = 0, mrr = 0, r1 = 0, r10 = 0, cosSum = 0, cosN = 0;
  const sc = new Float32Array(nd), order = new Int32Array(nd);
  qs.forEach(([, v], qi) => {
    for (let j = 0; j < nd; j++) {
      let s = 0;
      for (let k = 0; k < dim; k++) s += Q[qi * dim + k] * C.emb[j * dim + k];
      sc[j] = s;
      order[j] = j;
    }
    const top = Array.from(order).sort((a, b) => sc[b] - sc[a] || a - b).slice(0, 10);
    let dcg = 0, idcg = 0, first = 0, hits = 0;
    top.forEach((j, r) => { if (v.rel.has(j)) { dcg += 1 / Math.log2(r + 2); hits++; if (!first) first = r + 1; } });
    for (let r = 0; r < Math.min(10, v.rel.size); r++) idcg += 1 / Math.log2(r + 2);
    ndcg += dcg / idcg;
    mrr += first ? 1 / first : 0;
    r1 += v.rel.has(top[0]) ? 1 / v.rel.size : 0;
    r10 += hits / v.rel.size;
    for (const j of v.rel) { cosSum += sc[j]; cosN++; }
  });
  const n = qs.length;
  return { 'nDCG@10': ndcg / n, 'MRR@10': mrr / n, 'Recall@1': r1 / n, 'Recall@10': r10 / n, 'mean cosine (query, its passage)': cosSum / cosN, queries: n, passages: nd };
}

function renderEval() {
  const t = $('eval-table'), b = state.before, a = state.after;
  t.tBodies[0].replaceChildren();
  if (!b) { t.hidden = true; return; }
  for (const k of Object.keys(b)) {
    if (k === 'queries' || k === 'passages') continue;
    const tr = el('tr');
    const diff = a ? a[k] - b[k] : null;
    tr.append(el('td', k), el('td', fmt(b[k])), el('td', a ? fmt(a[k]) : '…'),
      el('td', diff == null ? '' : (diff >= 0 ? '+' : '') + fmt(diff), diff == null ? '' : diff > 0 ? 'up' : diff < 0 ? 'down' : ''));
    t.tBodies[0].append(tr);
  }
  t.hidden = false;
  setStatus('eval-status', `${b.queries} held-out queries searched among ${b.passages} passages.`);
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

// ------------------------------------------------------------------ IndexedDB checkpoints
function idb() {
  return new Promise((res, rej) => {
    const r = indexedDB.open('embedtune', 1);
    r.onupgradeneeded = () => r.result.createObjectStore('kv');
    r.onsuccess = () => res(r.result);
    r.onerror = () => rej(r.error);
  });
}
async function kv(mode, fn) {
  const db = await idb();
  try {
    return await new Promise((res, rej) => {
      const tx = db.transaction('kv', mode), st = tx.objectStore('kv');
      const req = fn(st);
      tx.oncomplete = () => res(req && req.result);
      tx.onerror = tx.onabort = () => rej(tx.error || new Error('IndexedDB transaction failed'));
    });
  } finally { db.close(); }
}
const kvGet = (k) => kv('readonly', (s) => s.get(k));
const kvPut = (k, v) => kv('readwrite', (s) => s.put(v, k));
const kvDel = (k) => kv('readwrite', (s) => s.delete(k));

async function saveCheckpoint(run, done) {
  const files = await state.worker.trainCheckpoint();
  if (!files) return;
  run.checkpoint = files;
  run.step = state.lastStep;
  run.lossHistory = state.lossHistory;
  run.done = !!done;
  run.savedAt = Date.now();
  await kvPut('run', run);
  state.lastSave = performance.now();
}

async function offerResume() {
  let run;
  try { run = await kvGet('run'); } catch { return; }
  if (!run || !run.checkpoint) return;
  const box = $('resume-box');
  box.hidden = false;
  $('resume-text').textContent = run.done
    ? `A finished run was saved (${run.totalSteps} steps, ${run.dataName}, ${new Date(run.savedAt).toLocaleString()}). Restore the tuned model? `
    : `An interrupted run was found: step ${run.step} of ${run.totalSteps} (${run.dataName}, ${new Date(run.savedAt).toLocaleString()}). `;
  $('btn-resume').textContent = run.done ? 'Restore' : 'Resume';
  document.body.dataset.resume = 'offered';
}

// ------------------------------------------------------------------ the training run
function settings() {
  return {
    loss: $('opt-loss').value, moe: $('opt-moe').checked, experts: +$('opt-experts').value | 0,
    epochs: Math.max(1, +$('opt-epochs').value | 0), lr: +$('opt-lr').value, batch: Math.max(2, +$('opt-batch').value | 0),
    maxLen: Math.max(16, +$('opt-maxlen').value | 0), seed: Math.max(0, +$('opt-seed').value | 0),
  };
}
function applySettings(s) {
  $('opt-loss').value = s.loss; $('opt-moe').checked = s.moe; $('opt-experts').value = s.experts; $('opt-experts').disabled = !s.moe;
  $('opt-epochs').value = s.epochs; $('opt-lr').value = s.lr; $('opt-batch').value = s.batch; $('opt-maxlen').value = s.maxLen; $('opt-seed').value = s.seed;
}

async function buildJsonl(s) {
  const train = state.data.rows.filter((r) => !r.test);
  let recs = trainRecords(train, s.loss, s.seed);
  const labelled = train.some((r) => r.label != null);
  if (s.loss.startsWith('soft') && !(state.data.K && labelled)) { // the starting model's cosine is the expert
    setStatus('train-status', 'Scoring the training rows with the starting model (the expert)…');
    const dim = state.info.dim;
    const A = normalizeRows(await state.worker.encode(recs.map((r) => r.query), { maxLength: 64 }), dim);
    const P = normalizeRows(await state.worker.encode(recs.map((r) => r.positive), { maxLength: s.maxLen }), dim);
    recs.forEach((r, i) => { let c = 0; for (let k = 0; k < dim; k++) c += A[i * dim + k] * P[i * dim + k]; r.scores = [Math.round(c * 1e6) / 1e6]; });
  }
  if (!s.loss.startsWith('soft')) recs.forEach((r) => delete r.scores);
  recs = recs.map((r) => { const o = { ...r }; if (o.scores == null) delete o.scores; return o; });
  return recs.map((r) => JSON.stringify(r)).join('\n') + '\n';
}

async function runTraining(resumeRun) {
  const err = checkTrainable();
  if (err && !resumeRun) { setStatus('train-status', err, 'bad'); return; }
  state.training = true; state.stop = false;
  document.body.dataset.train = 'running';
  updateButtons();
  const s = resumeRun ? resumeRun.settings : settings();
  try {
    if (state.trained) await loadModel(state.baseFiles, state.modelSource, state.modelName); // start from the loaded model
    let run;
    if (resumeRun) {
      run = resumeRun;
      state.before = run.before;
      state.lossHistory = run.lossHistory || [];
    } else {
      setStatus('train-status', 'Evaluating the starting model on the held-out rows…');
      state.before = await evaluate();
      state.after = null;
      renderEval();
      state.lossHistory = [];
      const jsonl = await buildJsonl(s);
      run = { settings: s, jsonl, dataText: state.data.text, dataName: state.data.name, before: state.before,
        modelSource: state.modelSource, baseFiles: state.modelSource.kind === 'user' ? state.baseFiles : null, startedAt: Date.now() };
    }
    const cfg = { loss: s.loss, epochs: s.epochs, batch: s.batch, lr: s.lr, maxLenQ: 64, maxLenD: s.maxLen,
      moeExperts: s.moe ? s.experts : 0, seed: s.seed };
    let info = await state.worker.trainBegin(run.jsonl, cfg);
    if (resumeRun) info = await state.worker.trainResume(run.checkpoint);
    state.totalSteps = run.totalSteps = info.totalSteps;
    state.lastStep = info.step;
    setStatus('train-status', `Training: ${info.examples} examples, ${info.totalSteps} steps${info.negatives ? `, ${info.negatives} hard negative(s) per query` : ''}.`);
    const t0 = performance.now(), step0 = info.step;
    state.lastSave = performance.now();
    let chunk = 1;
    const onStep = (st) => {
      state.lastStep = st.step;
      state.lossHistory.push({ step: st.step, loss: st.loss, epoch: st.epoch });
      $('train-progress').value = st.step / st.totalSteps;
      const el_ = (performance.now() - t0) / 1000, per = el_ / (st.step - step0);
      $('train-eta').textContent = `step ${st.step} / ${st.totalSteps} · epoch ${st.epoch + 1} · loss ${fmt(st.loss)} · lr ${st.lr.toExponential(2)} · ` +
        `${st.examplesPerS.toFixed(1)} queries/s · elapsed ${fmtTime(el_)} · ETA ${fmtTime(per * (st.totalSteps - st.step))}`;
      drawChart();
    };
    drawChart();
    while (!info.done && info.step < info.totalSteps) {
      const c0 = performance.now();
      info = await state.worker.trainRun(chunk, onStep);
      const per = (performance.now() - c0) / chunk;
      chunk = Math.max(1, Math.min(50, Math.round(800 / Math.max(per, 1))));
      if (state.stop && !info.done) {
        await saveCheckpoint(run, false);
        await state.worker.trainEnd();
        state.trained = true;
        setStatus('train-status', `Stopped at step ${info.step} of ${info.totalSteps}. The checkpoint is saved in this browser: reload or press Resume to continue.`);
        document.body.dataset.train = 'stopped';
        await offerResume();
        return;
      }
      if (performance.now() - state.lastSave > (window.__embedtuneCheckpointMs ?? CHECKPOINT_EVERY_MS)) await saveCheckpoint(run, false);
    }
    await saveCheckpoint(run, true).catch(() => {});
    await state.worker.trainEnd();
    state.trained = true;
    $('train-progress').value = 1;
    if (resumeRun?.done) setStatus('train-status', 'Restored the tuned model from this browser\'s storage.', 'good');
    else setStatus('train-status', `Done: ${info.totalSteps} steps in ${fmtTime((performance.now() - t0) / 1000)}.`, 'good');
    setStatus('eval-status', 'Evaluating the tuned model…');
    state.after = await evaluate();
    renderEval();
    document.body.dataset.train = 'done';
  } catch (e) {
    setStatus('train-status', `Training failed: ${e.message}`, 'bad');
    document.body.dataset.train = 'error';
    try { await state.worker.trainEnd(); } catch { /* ignore */ }
  } finally {
    state.training = false;
    updateButtons();
    showFiles();
  }
}

async function resume() {
  const run = await kvGet('run');
  if (!run) return;
  $('resume-box').hidden = true;
  try {
    if (run.modelSource.kind === 'user') await loadModel(run.baseFiles, run.modelSource, run.modelSource.name);
    else {
      const { files, name } = await fetchBundled();
      if (name !== run.modelSource.name) throw new Error(`the run used the bundled model "${run.modelSource.name}", this server has "${name}"`);
      if (state.modelSource?.kind !== 'bundled' || state.trained) await loadModel(files, { kind: 'bundled', name }, `${name} (bundled)`);
    }
    applySettings(run.settings);
    await setData(run.dataText, run.dataName);
    await runTraining(run);
  } catch (e) {
    setStatus('train-status', `Could not resume: ${e.message}`, 'bad');
  }
}

// ------------------------------------------------------------------ search
async function search() {
  const q = $('search-q').value.trim();
  const ol = $('search-results');
  if (!q || !state.corpus) return;
  const hits = await state.worker.search(q, 10);
  ol.replaceChildren(...hits.map((h) => { const li = el('li'); li.append(el('span', h.score.toFixed(3), 'score'), document.createTextNode(state.corpus.texts[h.index])); return li; }));
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
    'tokenizer_config.json', 'special_tokens_map.json', 'config_sentence_transformers.json', '2_Normalize/'];
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
  $('btn-train').disabled = !ready || !state.data || !state.data.rows.length;
  $('btn-stop').disabled = !state.training;
  $('btn-zip').disabled = !ready;
  $('search-q').disabled = $('btn-search').disabled = !ready || !state.corpus;
  $('btn-bundled').disabled = state.training;
  $('model-folder').disabled = state.training;
  $('btn-resume').disabled = !state.worker || state.training;
}

function wire() {
  $('btn-bundled').addEventListener('click', loadBundled);
  $('model-folder').addEventListener('change', (e) => { if (e.target.files.length) loadUserModel([...e.target.files]); });
  const drop = $('model-drop');
  drop.addEventListener('dragover', (e) => { e.preventDefault(); drop.classList.add('over'); });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', async (e) => { e.preventDefault(); drop.classList.remove('over'); if (!state.training) loadUserModel(await droppedFiles(e.dataTransfer)); });
  $('data-file').addEventListener('change', async (e) => {
    const f = e.target.files[0];
    if (!f) return;
    try { await setData(await readTextFile(f), f.name); } catch (x) { setStatus('data-status', x.message, 'bad'); }
    e.target.value = '';
  });
  $('btn-paste').addEventListener('click', () => setData($('data-text').value.replace(/^\ufeff/, ''), 'pasted text').catch((x) => setStatus('data-status', x.message, 'bad')));
  $('opt-moe').addEventListener('change', () => { $('opt-experts').disabled = !$('opt-moe').checked; });
  $('opt-loss').addEventListener('change', updateSettingsNote);
  $('btn-train').addEventListener('click', () => runTraining(null));
  $('btn-stop').addEventListener('click', () => { state.stop = true; setStatus('train-status', 'Stopping after this step…'); });
  $('btn-resume').addEventListener('click', resume);
  $('btn-discard').addEventListener('click', async () => { await kvDel('run'); $('resume-box').hidden = true; delete document.body.dataset.resume; });
  $('btn-search').addEventListener('click', search);
  $('search-q').addEventListener('keydown', (e) => { if (e.key === 'Enter') search(); });
  $('btn-zip').addEventListener('click', () => downloadZip().catch((x) => setStatus('train-status', `Download failed: ${x.message}`, 'bad')));
}

// test hook (the browser tests compare the page's embeddings with the native CLI's)
window.__embedtune = {
  encode: async (texts) => Array.from(await state.worker.encode(texts)),
  state: () => ({ model: state.modelName, trained: state.trained, before: state.before, after: state.after,
    steps: state.lossHistory.length, loss: state.lossHistory.map((p) => p.loss), epochs: state.lossHistory.map((p) => p.epoch), rows: state.data?.rows.length ?? 0,
    errors: state.data?.errors ?? [], info: state.info }),
  zip: async () => { const f = await exportFiles(); const b = makeZip(f); return Array.from(new Uint8Array(await b.arrayBuffer())); },
};

wire();
showIsolation();
drawChart();
updateSettingsNote();
updateButtons();
await loadBundled();
await offerResume();
