// evalview.mjs - the before/after table: the run's `finetune --json` report as BM25, dense before / after / change
// and hybrid before / after columns, and the line under it (counts, experts, fusion, memory). evalRows is pure
// (node unit test).
import { $, el, fmt, setStatus } from './ui.mjs';
import { METRIC_NAMES } from './compare.mjs';

/** Table rows of a finetune --json report: [{metric, bm25, before, after, change, hybridBefore, hybridAfter}];
 * hybrid (retrieval data): the default fusion with the starting model, the learned fusion with the tuned one. */
export function evalRows(r) {
  if (!r) return [];
  const hb = r.hybrid?.before?.hybrid_default, ha = r.hybrid?.after?.hybrid_learned;
  return Object.keys(r.before).map((k) => ({ key: k, metric: METRIC_NAMES[k] || k, bm25: r.bm25?.[k] ?? null, before: r.before[k], after: r.after[k],
    change: r.after[k] != null && r.before[k] != null ? r.after[k] - r.before[k] : null, hybridBefore: hb?.[k] ?? null, hybridAfter: ha?.[k] ?? null }));
}

/** Show report r (null: hide the table); corpusFile: the name of the run's corpus file, if any. */
export function renderEval(r, { corpusFile = null } = {}) {
  const t = $('eval-table');
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
  const among = c.eval_passages ? `queries searched among ${c.eval_passages} passages (your file's${corpusFile ? ' and the corpus file\'s' : ''})` : 'queries searched among all passages of the file';
  setStatus('eval-status', `${c.test} held-out ${r.eval_kind === 'retrieval' ? among : 'pairs'}; ` +
    `trained on ${c.train} ${r.eval_kind === 'retrieval' ? 'queries' : 'rows'} (${c.examples} examples, ${c.steps} steps` +
    `${c.mined_negatives ? `, ${c.mined_negatives} mined negatives, ${c.refreshes} refresh${c.refreshes === 1 ? '' : 'es'}` : ''}` +
    `${r.settings.experts?.length ? `, experts: ${r.settings.experts.join(', ')}` : ''}).` +
    (hasHybrid ? ` Hybrid: BM25 + the model fused (${r.hybrid.before.learned_fusion} before; after: ${r.hybrid.after.learned_fusion}, ${r.hybrid.after.how}).` : '') +
    (r.memory ? ` Memory: about ${Math.round(r.memory.estimate_mib)} MB planned of a ${Math.round(r.memory.budget_mib)} MB budget.` : ''));
}
