// unit.test.mjs - the page's pure parts under node (no browser, no wasm): web/snippet.mjs.
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
