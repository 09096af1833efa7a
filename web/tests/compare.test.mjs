// Compare two runs side by side (issue 14 item 2): two runs with different settings are kept (IndexedDB: they are
// still there after a reload), the comparison table shows each run's settings and before/after values as the runs
// reported them, the difference column is the second minus the first, and the rows that differ are marked.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { REPO, openPage, closePage, foreign } from './helpers.mjs';

const PAIRS = path.join(REPO, 'tests/fixtures/train/debian_pairs.jsonl');
let server, b;

before(async () => ({ server, b } = await openPage()));
after(() => closePage({ server, b }));

async function run(page, settings) {
  for (const [id, v] of settings) await page.fill(id, v);
  await page.click('#btn-train');
  await page.waitForSelector('body[data-train="running"]');
  await page.waitForSelector('body[data-train="done"]', { timeout: 300000 });
  return page.evaluate(() => window.__embedtune.state());
}

const cell = (page, key, col) => page.locator(`#cmp-table tr[data-key="${key}"] td`).nth(col).textContent();

test('two runs are kept and compared side by side with their differences', async () => {
  const { page, requests } = b;
  await page.goto(server.origin + '/');
  await page.waitForSelector('body[data-model="ready"]', { timeout: 60000 });
  assert.equal(await page.getAttribute('body', 'data-runs'), '0');
  await page.setInputFiles('#data-file', PAIRS);
  await page.waitForSelector('body[data-data="ready"]', { timeout: 60000 });
  await page.click('#advanced summary');
  const common = [['#opt-epochs', '1'], ['#opt-maxlen', '32'], ['#opt-batch', '16'], ['#opt-refresh', '0'], ['#opt-seed', '3']];
  const s1 = await run(page, [...common, ['#opt-negatives', '1']]);
  await page.waitForSelector('body[data-runs="1"]');
  assert.match(await page.textContent('#cmp-status'), /One run saved/);
  const s2 = await run(page, [...common, ['#opt-negatives', '2']]);
  await page.waitForSelector('body[data-runs="2"]');

  // the newest two are chosen: run 1 first, run 2 second
  assert.equal(await page.inputValue('#cmp-a'), '1');
  assert.equal(await page.inputValue('#cmp-b'), '2');
  assert.equal(await page.isVisible('#cmp-table'), true);
  assert.equal(await cell(page, 'settings:negatives', 0), '1');
  assert.equal(await cell(page, 'settings:negatives', 1), '2');
  assert.equal(await cell(page, 'settings:negatives', 2), '+1');
  assert.match(await page.getAttribute('#cmp-table tr[data-key="settings:negatives"]', 'class'), /differs/);
  assert.doesNotMatch((await page.getAttribute('#cmp-table tr[data-key="settings:seed"]', 'class')) || '', /differs/);
  // metric rows: the runs' own values, the difference second - first
  const a = s1.result.after['ndcg@10'], c = s2.result.after['ndcg@10'];
  const k = 'dense after:ndcg@10';
  assert.equal(await cell(page, k, 0), a.toFixed(4));
  assert.equal(await cell(page, k, 1), c.toFixed(4));
  assert.equal(Number((await cell(page, k, 2)).replace('+', '')), Number((c - a).toFixed(4)));
  assert.equal(await cell(page, 'BM25:ndcg@10', 0), s1.result.bm25['ndcg@10'].toFixed(4));
  assert.equal(await cell(page, 'hybrid after:ndcg@10', 1), s2.result.hybrid.after.hybrid_learned['ndcg@10'].toFixed(4));
  // only differences: the seed row goes, the negatives row stays
  await page.check('#cmp-diff-only');
  assert.equal(await page.locator('#cmp-table tr[data-key="settings:seed"]').count(), 0);
  assert.equal(await page.locator('#cmp-table tr[data-key="settings:negatives"]').count(), 1);

  // kept across a reload (IndexedDB); swap the two
  await page.reload();
  await page.waitForSelector('body[data-runs="2"]', { timeout: 60000 });
  await page.selectOption('#cmp-a', '2');
  await page.selectOption('#cmp-b', '1');
  assert.equal(await cell(page, 'settings:negatives', 2), '-1');
  assert.match(await page.textContent('#cmp-status'), /Run 2 and run 1: \d+ rows differ/);
  await page.click('#btn-cmp-clear');
  await page.waitForSelector('body[data-runs="0"]');
  assert.equal(await page.isVisible('#cmp-table'), false);
  assert.deepEqual(foreign(requests, server.origin), []);
});
