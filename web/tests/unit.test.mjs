// unit.test.mjs - the page's pure parts under node (no browser, no wasm): snippet.mjs, compare.mjs, ui.mjs, files.mjs,
// chart.mjs, trainview.mjs, evalview.mjs, searchview.mjs.
// The spans given here are what the C library's BM25 token rule returns for the query (et_bm25_match_spans);
// the browser test (train.test.mjs) checks the whole chain on real search results.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { snippetOf, displayText, hitsIn, SNIPPET_CHARS, TITLE_MAX } from '../snippet.mjs';

/** spans of every occurrence of the (lowercase) words in t, as a hand-made stand-in for the C rule */
const spansOf = (t, words) => {
  const out = [];
  const re = /[A-Za-z0-9]+/g;
  let m;
  while ((m = re.exec(t))) if (words.includes(m[0].toLowerCase())) out.push([m.index, m.index + m[0].length]);
  return out;
};
const marked = (text, hits) => hits.map(([a, b]) => text.slice(a, b));

test('displayText collapses whitespace and trims', () => {
  assert.equal(displayText('  a\n\tb   c \r\n'), 'a b c');
});

test('hitsIn keeps the spans inside a window, shifted', () => {
  assert.deepEqual(hitsIn([[0, 2], [5, 8], [9, 12], [20, 22]], 4, 12), [[1, 4], [5, 8]]);
});

test('a short passage: title = first sentence, the rest whole, marks kept', () => {
  const t = 'Resize images. Use convert -resize 50% to resize an image from the shell.';
  const sn = snippetOf(t, spansOf(t, ['resize', 'image']));
  assert.equal(sn.title, 'Resize images.');
  assert.equal(sn.snippet, 'Use convert -resize 50% to resize an image from the shell.');
  assert.equal(sn.more, false);
  assert.deepEqual(marked(sn.title, sn.titleHits), ['Resize']);
  assert.deepEqual(marked(sn.snippet, sn.snippetHits), ['resize', 'resize', 'image']);
});

test('a long passage: a snippet window around the most matches, cut at words, with ellipses', () => {
  const filler = 'lorem ipsum dolor sit amet '.repeat(30);
  const t = displayText(`First line here. ${filler} the partition editor edits a partition table here ${filler}`);
  const hits = spansOf(t, ['partition', 'editor']);
  const sn = snippetOf(t, hits);
  assert.equal(sn.title, 'First line here.');
  assert.ok(sn.more);
  assert.ok(sn.snippet.length <= SNIPPET_CHARS + 4, `${sn.snippet.length}`);
  assert.ok(sn.snippet.startsWith('… ') && sn.snippet.endsWith(' …'), sn.snippet);
  assert.deepEqual(marked(sn.snippet, sn.snippetHits), ['partition', 'editor', 'partition']);
  // every word in the snippet is whole (cut at spaces)
  const inner = sn.snippet.slice(2, -2);
  assert.ok(t.includes(inner) && /^\S/.test(inner) && /\S$/.test(inner), inner);
  assert.ok(/(^|\s)$/.test(t.slice(0, t.indexOf(inner))), 'starts at a word');
});

test('a first sentence longer than TITLE_MAX is cut at a word with an ellipsis; the rest starts after it', () => {
  const t = 'word '.repeat(40).trim() + '. Tail.';
  const sn = snippetOf(t, []);
  assert.ok(sn.title.endsWith(' …') && sn.title.length <= TITLE_MAX + 2, sn.title);
  assert.equal(sn.title.slice(0, -2) + ' ' + sn.snippet, t);
});

test('no matches: the snippet starts at the beginning of the rest', () => {
  const t = 'Title. ' + 'alpha beta gamma '.repeat(40);
  const sn = snippetOf(displayText(t), []);
  assert.ok(sn.snippet.startsWith('alpha beta'), sn.snippet.slice(0, 20));
  assert.deepEqual(sn.snippetHits, []);
});

// ------------------------------------------------------------------ web/compare.mjs (two runs side by side)
import { compareRows, runLabel, runRecord } from '../compare.mjs';

const report = (neg, nd, bm) => ({ loss: 'infonce', counts: { train: 155, test: 45, examples: 155, steps: 10 }, seconds: { train: 3.5 },
  settings: { negatives: neg, seed: 3, experts: [] }, bm25: { 'ndcg@10': bm }, before: { 'ndcg@10': 0.2 }, after: { 'ndcg@10': nd, anisotropy: 0.1 },
  hybrid: { before: { hybrid_default: { 'ndcg@10': 0.3 } }, after: { hybrid_learned: { 'ndcg@10': 0.35 } } } });

test('compareRows: settings and metrics side by side, diff = second - first, differing rows marked', () => {
  const a = runRecord({ id: 1, when: 0, data: 'p.jsonl', model: 'compact', args: ['--negatives', '1'], result: report(1, 0.25, 0.5) });
  const b = runRecord({ id: 2, when: 0, data: 'p.jsonl', model: 'compact', args: ['--negatives', '2'], result: report(2, 0.3, 0.5) });
  const rows = compareRows(a, b), get = (g, k) => rows.find((r) => r.group === g && r.key === k);
  assert.deepEqual(get('settings', 'negatives'), { group: 'settings', key: 'negatives', name: 'negatives', a: 1, b: 2, diff: 1, differs: true });
  assert.equal(get('settings', 'seed').differs, false);
  assert.equal(get('settings', 'experts').differs, false); // [] and []
  assert.ok(Math.abs(get('dense after', 'ndcg@10').diff - 0.05) < 1e-12);
  assert.equal(get('BM25', 'ndcg@10').differs, false);
  assert.equal(get('run', 'options').a, '--negatives 1');
  assert.equal(get('run', 'options').differs, true);
  assert.equal(get('run', 'options').diff, null);
  assert.equal(get('hybrid after', 'ndcg@10').a, 0.35);
  assert.equal(get('run', 'corpus').differs, false); // both none
  // a metric only one run has: kept, no difference computed
  b.result.after.spearman = 50;
  const s = compareRows(a, b).find((r) => r.group === 'dense after' && r.key === 'spearman');
  assert.deepEqual([s.a, s.b, s.diff, s.differs], [null, 50, null, true]);
});

test('runLabel names the run, its time, loss, files and nDCG@10 after', () => {
  const when = new Date(2026, 0, 2, 9, 5).getTime();
  assert.equal(runLabel(runRecord({ id: 3, when, data: 'faq.jsonl', corpus: 'docs.txt', args: [], result: report(1, 0.3164, 0.5) })),
    'Run 3 · 09:05 · infonce · faq.jsonl + docs.txt · nDCG@10 0.316');
});

// ------------------------------------------------------------------ the page's other pure parts (app.mjs split)
import { fmt, fmtTime, fmtBytes } from '../ui.mjs';
import { modelFilesFromListing, makeZip, crc32, adapterFilesFromListing } from '../files.mjs';
import { chartRange } from '../chart.mjs';
import { finetuneArgs, phaseLabel, checkTrainable, checkSettings, newRun, stepProgress, OPTS } from '../trainview.mjs';
import { evalRows } from '../evalview.mjs';
import { vectorsText, dimChoices } from '../searchview.mjs';
import { unzipStore } from './helpers.mjs';

test('formats: numbers, durations, sizes', () => {
  assert.equal(fmt(0.31644), '0.3164');
  assert.equal(fmt(null), '–');
  assert.equal(fmt(NaN), '–');
  assert.equal(fmtTime(59.6), '1 min 0 s');
  assert.equal(fmtTime(3725), '1 h 2 min');
  assert.equal(fmtTime(-3), '0 s');
  assert.equal(fmtTime(NaN), '–');
  assert.equal(fmtBytes(512), '512 B');
  assert.equal(fmtBytes(3 << 20), '3.0 MB');
  assert.equal(fmtBytes(1536), '1.5 KB');
});

test('modelFilesFromListing: one top folder is dropped, unknown files ignored, nested names kept', () => {
  const b = (s) => new TextEncoder().encode(s);
  const f = modelFilesFromListing({ 'm/config.json': b('{}'), 'm/vocab.txt': b('a'), 'm/1_Pooling/config.json': b('p'), 'm/README.md': b('x') });
  assert.deepEqual(Object.keys(f).sort(), ['config', 'pooling', 'vocab']);
  assert.equal(new TextDecoder().decode(f.pooling), 'p');
  const g = modelFilesFromListing({ 'config.json': b('{}'), 'a\\model.safetensors': b('s') }); // no common folder: nothing stripped
  assert.deepEqual(Object.keys(g), ['config']);
});

test('makeZip writes a STORE zip that reads back (CRC32 of "123456789" is cbf43926)', async () => {
  assert.equal(crc32(new TextEncoder().encode('123456789')).toString(16), 'cbf43926');
  const files = { 'm/config.json': new TextEncoder().encode('{"a":1}'), 'm/1_Pooling/config.json': new Uint8Array([0, 255, 7]) };
  const z = unzipStore(Buffer.from(await makeZip(files).arrayBuffer()));
  assert.deepEqual(Object.keys(z), Object.keys(files));
  for (const k of Object.keys(files)) assert.deepEqual(new Uint8Array(z[k]), files[k]);
});

test('chartRange: 5 % padding, not below 0 for a non-negative loss, a flat loss widened by 0.5', () => {
  const r = chartRange([{ step: 1, loss: 2 }, { step: 2, loss: 1 }], 10);
  assert.equal(r.total, 10);
  assert.ok(Math.abs(r.lo - 0.95) < 1e-12 && Math.abs(r.hi - 2.05) < 1e-12, JSON.stringify(r));
  const z = chartRange([{ step: 1, loss: 0.01 }, { step: 5, loss: 1 }], 0);
  assert.deepEqual([z.total, z.lo], [5, 0]); // 0.01 - 5 % of the range would be below 0
  const f = chartRange([{ step: 1, loss: 0.2 }], 0); // flat: +-0.5 first, then the padding
  assert.equal(f.total, 2);
  assert.ok(Math.abs(f.lo + 0.35) < 1e-12 && Math.abs(f.hi - 0.75) < 1e-12, JSON.stringify(f));
});

test('finetuneArgs: only the filled fields, as finetune options, in one order', () => {
  const s = { loss: 'infonce', moe: false, experts: 4, bm25: true, 'opt-epochs': '1', 'opt-seed': '7', 'opt-mem': '', 'opt-lr': '' };
  for (const id of ['opt-batch', 'opt-maxlen', 'opt-negatives', 'opt-refresh', 'opt-mine', 'opt-warmup', 'opt-tau', 'opt-dev', 'opt-adapt-pairs']) s[id] = '';
  assert.deepEqual(finetuneArgs(s), ['--loss', 'infonce', '--epochs', '1', '--seed', '7']);
  assert.deepEqual(finetuneArgs({ ...s, moe: true, bm25: false, 'opt-mem': '64' }),
    ['--loss', 'infonce', '--epochs', '1', '--seed', '7', '--mem-budget', '64', '--moe-experts', '4', '--no-bm25']);
  assert.deepEqual(finetuneArgs({ ...s, freezeEmb: true }), ['--loss', 'infonce', '--epochs', '1', '--seed', '7', '--freeze-embeddings']);
  assert.deepEqual(finetuneArgs({ ...s, freezeEmb: true, lora: true, loraTargets: ['q', 'v'] }), ['--loss', 'infonce', '--epochs', '1', '--seed', '7', '--lora', '8'],
    'adapter-only runs freeze the whole base: no --freeze-embeddings');
});

test('finetuneArgs with "Adapter only (LoRA)": --lora R (empty: 8), the filled LoRA fields, --lora-targets only off the default, --lora-base; checkSettings', () => {
  const s = { loss: 'infonce', moe: false, experts: 4, bm25: true, lora: true, loraTargets: ['q', 'v'], 'opt-lora-r': '', 'opt-lora-alpha': '', 'opt-lora-dropout': '' };
  for (const [id] of OPTS) s[id] = '';
  assert.deepEqual(finetuneArgs(s), ['--loss', 'infonce', '--lora', '8']);
  assert.deepEqual(finetuneArgs({ ...s, 'opt-lora-r': '4', 'opt-lora-alpha': '16', 'opt-lora-dropout': '0', loraTargets: ['q', 'k', 'v'], loraBase: 'models/compact' }),
    ['--loss', 'infonce', '--lora', '4', '--lora-alpha', '16', '--lora-dropout', '0', '--lora-targets', 'q,k,v', '--lora-base', 'models/compact']);
  assert.deepEqual(finetuneArgs({ ...s, lora: false, 'opt-lora-r': '4', loraBase: 'x' }), ['--loss', 'infonce'], 'the LoRA fields count only with "Adapter only"');
  assert.equal(checkSettings(s), '');
  assert.match(checkSettings({ ...s, loraTargets: [] }), /at least one layer/);
  assert.equal(checkSettings({ ...s, lora: false, loraTargets: [] }), '');
});

test('adapterFilesFromListing: the folder\'s two PEFT files (under one top folder or none), what is missing named', () => {
  const b = (t) => new TextEncoder().encode(t), names = ['adapter_config.json', 'adapter_model.safetensors'];
  const f = adapterFilesFromListing({ 'ad/adapter_config.json': b('{}'), 'ad/adapter_model.safetensors': b('st'), 'ad/retrieval.json': b('r'), 'ad/x/adapter_config.json': b('no') }, names);
  assert.deepEqual(Object.keys(f).sort(), names);
  assert.equal(new TextDecoder().decode(f['adapter_config.json']), '{}');
  assert.deepEqual(Object.keys(adapterFilesFromListing({ 'adapter_config.json': b('{}'), 'adapter_model.safetensors': b('st') }, names)).sort(), names);
  assert.throws(() => adapterFilesFromListing({ 'ad/adapter_config.json': b('{}') }, names), /not a LoRA adapter folder: it lacks adapter_model\.safetensors/);
});

test('phaseLabel: a past phase shows its time, the running one its ETA; checkTrainable', () => {
  const run = newRun(0);
  run.times.train = { start: 10, end: 73 };
  run.times.eval_after = { start: 73, eta: 5 };
  assert.equal(phaseLabel('train', run), 'Training · 1 min 3 s');
  assert.equal(phaseLabel('eval_after', run), 'Evaluating the tuned model · ETA 5 s');
  assert.equal(phaseLabel('mine', run), 'Mining hard negatives (ANCE)');
  assert.equal(checkTrainable(null), 'load a pairs file first');
  assert.match(checkTrainable({ rows: 3, test: 2 }), /at least 2 training rows/);
  assert.equal(checkTrainable({ rows: 10, test: 2 }), null);
});

test('stepProgress: each step of a phase has its own clock and count (the ETA of the fusion step), kept in run.steps', () => {
  const run = newRun(0);
  // encoding the held-out corpus: 100 of 1000 texts after 1 s, 500 after 5 s -> 400 in 4 s -> 5 s left
  assert.ok(Number.isNaN(stepProgress({ phase: 'eval_before', step: 'encode eval corpus', unit: 'texts', done: 100, total: 1000 }, run, 1000)));
  assert.equal(stepProgress({ phase: 'eval_before', step: 'encode eval corpus', unit: 'texts', done: 500, total: 1000 }, run, 5000), 5);
  // the fusion's cross-validation starts at 0 of 176 grid points: a new clock, not the encoding's rate
  assert.ok(Number.isNaN(stepProgress({ phase: 'eval_before', step: 'fusion cross-validation', unit: 'grid points', done: 0, total: 176 }, run, 6000)));
  assert.equal(stepProgress({ phase: 'eval_before', step: 'fusion cross-validation', unit: 'grid points', done: 16, total: 176 }, run, 7000), 10);
  assert.equal(run.steps['eval_before/encode eval corpus'].end, 6);
  assert.deepEqual(run.steps['eval_before/fusion cross-validation'], { start: 6, done: 16, total: 176, unit: 'grid points' });
  run.times.eval_before = { start: 0, eta: 10, step: 'fusion cross-validation' };
  assert.equal(phaseLabel('eval_before', run), 'Evaluating the starting model (dense + BM25) · fusion cross-validation · ETA 10 s');
});

test('evalRows: BM25, dense before/after/change, hybrid default before and learned after', () => {
  const r = { before: { 'ndcg@10': 0.2 }, after: { 'ndcg@10': 0.3 }, bm25: { 'ndcg@10': 0.5 },
    hybrid: { before: { hybrid_default: { 'ndcg@10': 0.55 } }, after: { hybrid_learned: { 'ndcg@10': 0.6 } } } };
  const [x] = evalRows(r);
  assert.equal(x.metric, 'nDCG@10');
  assert.ok(Math.abs(x.change - 0.1) < 1e-12);
  assert.deepEqual([x.bm25, x.hybridBefore, x.hybridAfter], [0.5, 0.55, 0.6]);
  assert.deepEqual(evalRows(null), []);
});

test('search vectors: the sizes offered and the words that name them', () => {
  assert.deepEqual(dimChoices(128), [0, 64, 32, 16]);
  assert.deepEqual(dimChoices(384), [0, 192, 96, 48, 24]);
  assert.equal(vectorsText({ dim: 0, int8: false }), '');
  assert.equal(vectorsText({ dim: 64, int8: false }), ', 64-value vectors');
  assert.equal(vectorsText({ dim: 0, int8: true }), ', full vectors, int8');
});

test('addModelKeys: a folder with tokenizer.json instead of vocab.txt is read', async () => {
  const { addModelKeys, modelFilesFromListing: list } = await import('../files.mjs');
  addModelKeys({ tokenizerJson: 'tokenizer.json' });
  const f = list({ 'x/config.json': new Uint8Array(1), 'x/tokenizer.json': new Uint8Array(2) });
  assert.deepEqual(Object.keys(f).sort(), ['config', 'tokenizerJson']);
});
