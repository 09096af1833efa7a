// compare.mjs - runs kept for comparison (issue 14 item 2): each finished run's settings and before/after report
// (the `finetune --json` result) is saved in the browser (IndexedDB, so runs outlive a reload; memory only where
// IndexedDB is unavailable), and two chosen runs are shown side by side with their differences.
// The pure parts (runRecord, runLabel, compareRows) have node unit tests (web/tests/unit.test.mjs).

export const METRIC_NAMES = { 'ndcg@10': 'nDCG@10', 'map@10': 'MAP@10', 'mrr@10': 'MRR@10', 'recall@100': 'Recall@100', auprc: 'AUPRC',
  anisotropy: 'anisotropy', mean_pos_cosine: 'mean cosine (query, its passage)', spearman: 'Spearman ×100', pearson: 'Pearson ×100' };

/** What is kept of a run: {id, when (ms), data, corpus, model, args, result}. */
export function runRecord({ id, when, data, corpus, model, args, result }) {
  return { id, when, data: data ?? null, corpus: corpus ?? null, model: model ?? null, args: [...(args || [])], result };
}

/** "Run 2 · 14:03 · infonce · pairs.jsonl · nDCG@10 0.316" */
export function runLabel(r) {
  const t = new Date(r.when), hh = String(t.getHours()).padStart(2, '0'), mm = String(t.getMinutes()).padStart(2, '0');
  const nd = r.result?.after?.['ndcg@10'];
  return `Run ${r.id} · ${hh}:${mm} · ${r.result?.loss ?? '?'} · ${r.data ?? '?'}${r.corpus ? ` + ${r.corpus}` : ''}` +
    (nd != null ? ` · nDCG@10 ${nd.toFixed(3)}` : '');
}

const num = (x) => typeof x === 'number' && Number.isFinite(x);
const show = (v) => (v == null ? '–' : Array.isArray(v) ? (v.length ? v.join(', ') : '–') : typeof v === 'boolean' ? (v ? 'yes' : 'no') : String(v));

/** Rows of the side-by-side table of runs a and b: [{group, key, name, a, b, diff, differs}]. group: 'run' (files,
 * loss, counts), 'settings' (the settings the run used, automatic ones resolved), then one group per table column
 * of the before/after report ('BM25', 'dense before', 'dense after', 'hybrid before', 'hybrid after'), one row per
 * metric. diff = b - a for numbers (else null); differs: the two values are not the same. */
export function compareRows(a, b) {
  const rows = [];
  const add = (group, key, name, va, vb) => {
    const both = num(va) && num(vb);
    const differs = both ? Math.abs(va - vb) > 1e-12 : show(va) !== show(vb);
    rows.push({ group, key, name, a: va ?? null, b: vb ?? null, diff: both ? vb - va : null, differs });
  };
  const ra = a.result || {}, rb = b.result || {};
  add('run', 'model', 'model', a.model, b.model);
  add('run', 'data', 'pairs file', a.data, b.data);
  add('run', 'corpus', 'corpus file', a.corpus, b.corpus);
  add('run', 'loss', 'loss', ra.loss, rb.loss);
  add('run', 'options', 'options given', a.args.join(' '), b.args.join(' '));
  for (const k of ['train', 'test', 'examples', 'steps']) add('run', `counts.${k}`, k === 'test' ? 'held-out' : k, ra.counts?.[k], rb.counts?.[k]);
  add('run', 'seconds.train', 'training seconds', ra.seconds?.train, rb.seconds?.train);
  const sk = [...new Set([...Object.keys(ra.settings || {}), ...Object.keys(rb.settings || {})])];
  for (const k of sk) add('settings', k, k.replace(/_/g, ' '), ra.settings?.[k], rb.settings?.[k]);
  const parts = [['BM25', (r) => r.bm25], ['dense before', (r) => r.before], ['dense after', (r) => r.after],
    ['hybrid before', (r) => r.hybrid?.before?.hybrid_default], ['hybrid after', (r) => r.hybrid?.after?.hybrid_learned]];
  for (const [group, get] of parts) {
    const ma = get(ra) || {}, mb = get(rb) || {};
    const keys = [...new Set([...Object.keys(ma), ...Object.keys(mb)])].filter((k) => num(ma[k]) || num(mb[k]));
    for (const k of keys) add(group, k, METRIC_NAMES[k] || k, ma[k], mb[k]);
  }
  return rows;
}

// ------------------------------------------------------------------ storage (IndexedDB, else memory)
const DB = 'embedtune-page', STORE = 'runs';

function idb() {
  return new Promise((resolve) => {
    if (typeof indexedDB === 'undefined') { resolve(null); return; }
    let req;
    try { req = indexedDB.open(DB, 1); } catch { resolve(null); return; }
    req.onupgradeneeded = () => req.result.createObjectStore(STORE, { keyPath: 'id' });
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => resolve(null);
  });
}

/** The saved runs: {list() -> runs oldest first, add(run without id) -> run, clear()}. */
export async function openRunStore() {
  const db = await idb();
  const mem = [];
  const tx = (mode, fn) => new Promise((resolve, reject) => {
    const t = db.transaction(STORE, mode), s = t.objectStore(STORE);
    const r = fn(s);
    t.oncomplete = () => resolve(r?.result);
    t.onerror = () => reject(t.error);
  });
  const list = async () => (db ? (await tx('readonly', (s) => s.getAll())) || [] : mem.slice()).sort((x, y) => x.id - y.id);
  return {
    persistent: !!db,
    list,
    async add(run) {
      const all = await list();
      const rec = runRecord({ ...run, id: all.length ? all[all.length - 1].id + 1 : 1 });
      if (db) await tx('readwrite', (s) => s.put(rec)); else mem.push(rec);
      return rec;
    },
    async clear() { if (db) await tx('readwrite', (s) => s.clear()); else mem.length = 0; },
  };
}
