// The optional corpus file (passages without questions) in a real browser: it is read by the C reader of
// `finetune --corpus` (a BEIR corpus.jsonl here), searched beside the pairs' passages, and the run adapts on
// it: the page's run and native `embedtune finetune --corpus` on the same files, seed and settings give the
// same counts (adaptation pairs included) and the same before/after table (1e-4), whose held-out queries are
// ranked among the pairs' passages and the corpus file's, as the search box ranks them. A bad line is named as the
// CLI names it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { REPO, openPage, closePage, foreign } from './helpers.mjs';

const PAIRS = path.join(REPO, 'tests/fixtures/train/debian_pairs.jsonl');
const NATIVE = process.env.ET_NATIVE_EMBEDTUNE || path.join(REPO, 'build/embedtune');
let server, b, work, corpusPath;

before(async () => {
  ({ server, b, work } = await openPage('et-web-corpus-'));
  // 150 passages of the Debian sample corpus that are not passages of the pairs file
  const inPairs = new Set(readFileSync(PAIRS, 'utf8').trim().split('\n').map((l) => JSON.parse(l).positive));
  const docs = readFileSync(path.join(REPO, 'models/samples/debian/corpus.jsonl'), 'utf8').trim().split('\n')
    .map((l) => JSON.parse(l)).filter((d) => !inPairs.has(d.text)).slice(0, 150);
  corpusPath = path.join(work, 'corpus.jsonl');
  writeFileSync(corpusPath, docs.map((d) => JSON.stringify(d)).join('\n') + '\n');
});
after(() => closePage({ server, b, work }));

// no --max-len: the run encodes at the model's default cap, as the search index did, so it reuses the index (below)
const CLI_ARGS = ['--loss', 'infonce', '--epochs', '1', '--batch', '16', '--seed', '7', '--negatives', '3', '--dev', 'off', '--adapt-pairs', '40'];

test('a corpus file is searched beside the pairs, and the run adapts on it like finetune --corpus', async () => {
  const { page, requests } = b;
  await page.goto(server.origin + '/');
  await page.waitForSelector('body[data-model="ready"]', { timeout: 60000 });
  await page.setInputFiles('#data-file', PAIRS);
  await page.waitForSelector('body[data-data="ready"]', { timeout: 60000 });
  await page.setInputFiles('#corpus-file', corpusPath);
  await page.waitForSelector('body[data-extra="ready"]', { timeout: 60000 });
  assert.match(await page.textContent('#corpus-status'), /corpus\.jsonl: 150 passages/);
  await page.waitForFunction(() => /^(\d+) passages ready/.test(document.getElementById('search-status').textContent), null, { timeout: 120000 });
  const nPass = (await page.evaluate(() => window.__embedtune.passages())).length;
  const nPairs = new Set(readFileSync(PAIRS, 'utf8').trim().split('\n').map((l) => JSON.parse(l).positive)).size;
  assert.equal(nPass, nPairs + 150, 'the search index holds the pairs\' passages and the corpus file\'s');
  // the index build reported both its steps to their ends: the encoding (texts) and BM25 (docs)
  const ix = (await page.evaluate(() => window.__embedtune.state())).indexSteps;
  for (const [k, unit] of [['index/encode', 'texts'], ['index/BM25 index', 'docs']])
    assert.ok(ix?.[k] && ix[k].done === nPass && ix[k].total === nPass && ix[k].unit === unit, `index step ${k}: ${JSON.stringify(ix)}`);
  // a passage that only the corpus file has is found
  await page.selectOption('#search-mode', 'bm25');
  await page.fill('#search-q', 'C++ Annotations tutorial textbook');
  await page.press('#search-q', 'Enter');
  await page.waitForFunction(() => /by BM25/.test(document.getElementById('search-status').textContent));
  assert.match(await page.locator('#search-results li').first().textContent(), /C\+\+ Annotations/);

  // the run: finetune --corpus (adaptation pairs from it), compared with native
  await page.click('#advanced summary');
  for (const [id, v] of [['#opt-epochs', '1'], ['#opt-batch', '16'], ['#opt-seed', '7'], ['#opt-negatives', '3'], ['#opt-adapt-pairs', '40']])
    await page.fill(id, v);
  await page.selectOption('#opt-dev', 'off');
  await page.click('#btn-train');
  await page.waitForSelector('body[data-train="done"]', { timeout: 600000 });
  const s = await page.evaluate(() => window.__embedtune.state());
  const r = s.result;
  assert.deepEqual(s.args, CLI_ARGS);
  assert.equal(s.corpusFile, 'corpus.jsonl');
  assert.ok(r.counts.adaptation && r.counts.adaptation.pairs > 0, `adaptation pairs: ${JSON.stringify(r.counts)}`);
  assert.equal(r.settings.adapt, true);
  if (!existsSync(NATIVE)) assert.fail(`${NATIVE} not built`);
  const model = path.join(REPO, 'models', s.model.split(' ')[0]);
  const njson = path.join(work, 'native.json');
  const p = spawnSync(NATIVE, ['finetune', '--model', model, '--data', PAIRS, '--corpus', corpusPath, '--out', path.join(work, 'out'), '--json', njson,
    '-q', '--threads', String(s.info.threads), ...CLI_ARGS], { encoding: 'utf8' });
  assert.equal(p.status, 0, p.stderr);
  const n = JSON.parse(readFileSync(njson, 'utf8'));
  // the search index (the starting model at the model's cap, the run's) held every held-out passage: the evaluation
  // before training copied their embeddings instead of encoding them (et_finetune_cfg.known); its figures are
  // compared with native's, which encodes them, below
  const { eval_passages_known: known, ...counts } = r.counts;
  assert.equal(known, r.counts.eval_passages, `held-out passages' embeddings taken from the search index: ${known}`);
  assert.equal(s.stepTimes['eval_before/encode eval corpus'], undefined, 'nothing left to encode before training');
  assert.ok(s.stepTimes['eval_after/encode eval corpus']?.total === r.counts.eval_passages, 'after training they are encoded (the tuned model)');
  assert.equal(n.counts.eval_passages_known, undefined);
  assert.deepEqual(counts, n.counts, 'same counts (adaptation pairs included)');
  // the held-out queries search what the search box searches: the pairs' passages and the corpus file's
  assert.equal(r.counts.eval_passages, nPairs + 150, 'the held-out evaluation ranks among the pairs\' and the corpus file\'s passages');
  assert.match(await page.textContent('#eval-status'), new RegExp(`searched among ${nPairs + 150} passages \\(your file's and the corpus file's\\)`));
  let maxd = 0;
  for (const part of ['before', 'after', 'bm25'])
    for (const [k, v] of Object.entries(n[part])) {
      maxd = Math.max(maxd, Math.abs(v - r[part][k]));
      assert.ok(Math.abs(v - r[part][k]) <= 1e-4, `${part} ${k}: page ${r[part][k]}, native ${v}`);
    }
  console.log(`# corpus run: ${r.counts.adaptation.pairs} adaptation pairs, ${r.counts.steps} steps; page vs native max |diff| ${maxd.toExponential(2)}`);
  assert.deepEqual(foreign(requests, server.origin), []);
});

test('a bad line in the corpus file is named as finetune --corpus names it', async () => {
  const { page } = b;
  const bad = path.join(work, 'bad-corpus.jsonl');
  writeFileSync(bad, '{"_id": "a", "text": "fine"}\n{"_id": "b", "text": \n');
  await page.setInputFiles('#corpus-file', bad);
  await page.waitForSelector('body[data-extra="error"]', { timeout: 60000 });
  const msg = await page.textContent('#corpus-status');
  const p = spawnSync(NATIVE, ['finetune', '--model', path.join(REPO, 'models/compact'), '--data', PAIRS, '--corpus', bad, '--out', path.join(work, 'o2'), '-q'], { encoding: 'utf8' });
  assert.notEqual(p.status, 0);
  const native = p.stderr.trim().split('\n').pop().replace(/^embedtune finetune: (error: )?/, '').split(bad).join('bad-corpus.jsonl');
  assert.equal(msg, native);
  assert.match(msg, /bad-corpus\.jsonl.*2/);
});
