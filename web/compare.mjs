// compare.mjs - compare two runs side by side: each finished run's settings and before/after report (the
// `finetune --json` result; kept by storage.mjs) and the table of two chosen runs with the second minus the first and
// the rows that differ marked. The pure parts (runRecord, runLabel, compareRows) have node unit tests.
import { $, el, fmt, setStatus } from './ui.mjs';

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

/** Fill the two run pickers with runs (oldest first); latest: choose the newest two (the newest second), else keep
 * the choices that still exist. */
export function fillRunPickers(runs, latest = false) {
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
}

/** The table of the two chosen runs (hidden with fewer than two). */
export function renderCompare(runs, { persistent = true } = {}) {
  const t = $('cmp-table');
  const ra = runs.find((r) => String(r.id) === $('cmp-a').value), rb = runs.find((r) => String(r.id) === $('cmp-b').value);
  t.tBodies[0].replaceChildren();
  if (runs.length < 2 || !ra || !rb) {
    t.hidden = true;
    setStatus('cmp-status', runs.length === 1 ? 'One run saved: train again (other settings, another file) to compare two.'
      : runs.length ? '' : `No saved runs yet${!persistent ? ' (this browser keeps them for this visit only)' : ''}.`);
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
