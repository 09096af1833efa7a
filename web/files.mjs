// files.mjs - data and files: the model folder's files (picked, dropped or listed), the user's data files (read as
// bytes: the C library reads and checks them), the pairs preview, and the download (a STORE zip written by hand,
// CRC32). modelFilesFromListing, makeZip and crc32 are pure (node unit tests).
import { $, el, fmt, fmtBytes, setStatus } from './ui.mjs';

export const MAX_FILE = 256 << 20;
/** The model folder's files the page reads -> the keys Embedtune.load takes. */
export const MODEL_KEYS = {
  'config.json': 'config', 'vocab.txt': 'vocab', 'model.safetensors': 'safetensors', 'modules.json': 'modules',
  '1_Pooling/config.json': 'pooling', 'sentence_bert_config.json': 'sbertConfig', 'tokenizer_config.json': 'tokenizerConfig',
  'retrieval.json': 'retrieval',
};
/** More files the loader takes, {load() key: path} (app.mjs adds wasm/embedtune.mjs TOKENIZER_PATHS: tokenizer.json,
 * a sentencepiece .model, vocab.json + merges.txt, for folders without vocab.txt). */
export function addModelKeys(paths) { for (const [k, n] of Object.entries(paths)) MODEL_KEYS[n] = k; }

/** {relativePath: Uint8Array} of a picked adapter folder -> {name: bytes} for each of names (wasm/embedtune.mjs
 * ADAPTER_FILES: adapter_config.json, adapter_model.safetensors), the folder's own files, not a subfolder's; throws
 * naming what is missing. */
export function adapterFilesFromListing(listing, names) {
  const out = {};
  for (const [p, b] of Object.entries(listing)) {
    const parts = p.replace(/\\/g, '/').replace(/^\/+/, '').split('/');
    const name = parts.pop();
    if (names.includes(name) && parts.length <= 1 && !out[name]) out[name] = b;
  }
  const missing = names.filter((n) => !out[n]);
  if (missing.length) throw new Error(`not a LoRA adapter folder: it lacks ${missing.join(' and ')}`);
  return out;
}

/** {relativePath: Uint8Array} (maybe under one top folder) -> load() files. */
export function modelFilesFromListing(listing) {
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

/** The picked files the page reads ({relativePath: Uint8Array}): a model folder's (MODEL_KEYS) and the extra names
 * (a LoRA adapter folder's: wasm/embedtune.mjs ADAPTER_FILES). */
export async function readListing(fileList, extra = []) {
  const listing = {};
  const names = [...Object.keys(MODEL_KEYS), ...extra];
  for (const f of fileList) {
    const rel = f.webkitRelativePath || f.relPath || f.name;
    const base = rel.split('/').pop();
    if (!names.some((k) => rel.endsWith(k) || base === k.split('/').pop())) continue;
    listing[rel] = new Uint8Array(await f.arrayBuffer());
  }
  return listing;
}

/** Files from a drop (folders walked with webkitGetAsEntry). */
export async function droppedFiles(dt) {
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

// The bytes go to the worker as they are; `embedtune finetune`'s own reader (src/data.h) validates them,
// names bad lines, and the data.md split marks the held-out rows (wasm/et_wasm.c et_wasm_pairs_preview).
export async function readFileBytes(f) {
  if (f.size > MAX_FILE) throw new Error(`${f.name} is larger than ${fmtBytes(MAX_FILE)}`);
  return new Uint8Array(await f.arrayBuffer());
}

/** The pairs preview (et_wasm_pairs_preview: rows, the held-out split, bad lines with the CLI's messages). */
export function showData(d) {
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

const CRC = (() => { const t = new Uint32Array(256); for (let n = 0; n < 256; n++) { let c = n; for (let k = 0; k < 8; k++) c = c & 1 ? 0xEDB88320 ^ (c >>> 1) : c >>> 1; t[n] = c >>> 0; } return t; })();
export function crc32(b) { let c = 0xFFFFFFFF; for (let i = 0; i < b.length; i++) c = CRC[(c ^ b[i]) & 0xFF] ^ (c >>> 8); return (c ^ 0xFFFFFFFF) >>> 0; }

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

export function saveBlob(blob, name) {
  const a = document.createElement('a');
  a.href = URL.createObjectURL(blob);
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 30000);
}

/** The files of a model folder the page offers one by one (directories end with /). */
export const MODEL_FILE_NAMES = ['config.json', 'vocab.txt', 'model.safetensors', 'modules.json', '1_Pooling/config.json', 'sentence_bert_config.json',
  'tokenizer_config.json', 'special_tokens_map.json', 'config_sentence_transformers.json', 'retrieval.json', '2_Normalize/'];
