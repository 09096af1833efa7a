// Keyboard use and labels for screen readers, in a real browser: every control in the accessibility tree has
// an accessible name (playwright's ARIA snapshot: no unnamed button / textbox / combobox / spinbutton /
// checkbox), Tab reaches the file pickers, Train, the search box, the mode switch, Search and Download, and the
// whole flow works from the keyboard alone (choose a file by keyboard focus, Train with Enter, search with Enter).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { REPO, openPage, closePage } from './helpers.mjs';

const PAIRS = path.join(REPO, 'tests/fixtures/train/debian_pairs.jsonl');
let server, b;
before(async () => ({ server, b } = await openPage()));
after(() => closePage({ server, b }));

const UNNAMED = /^\s*- (button|textbox|searchbox|combobox|spinbutton|checkbox|slider|link)(\s*\[[^\]]*\])*:?\s*$/;

async function tabOrder(page, n = 90) {
  await page.evaluate(() => { document.activeElement?.blur(); window.scrollTo(0, 0); });
  await page.focus('body');
  const seen = [];
  for (let i = 0; i < n; i++) {
    await page.keyboard.press('Tab');
    seen.push(await page.evaluate(() => document.activeElement?.id || document.activeElement?.tagName.toLowerCase()));
  }
  return seen;
}

test('every control has an accessible name; Tab reaches Train and Search; the flow works from the keyboard', async () => {
  const { page } = b;
  await page.goto(server.origin + '/');
  await page.waitForSelector('body[data-model="ready"]', { timeout: 60000 });
  // the file picker is reached with Tab (it is not display: none) and a file chosen through it
  const order0 = await tabOrder(page, 12);
  for (const id of ['btn-bundled', 'model-folder', 'model-drop', 'data-file', 'corpus-file'])
    assert.ok(order0.includes(id), `Tab reaches #${id}: ${order0.join(' ')}`);
  const [chooser] = await Promise.all([page.waitForEvent('filechooser'), page.focus('#data-file').then(() => page.keyboard.press('Enter'))]);
  await chooser.setFiles(PAIRS);
  await page.waitForSelector('body[data-data="ready"]', { timeout: 60000 });
  await page.waitForSelector('body[data-corpus="ready"]', { timeout: 120000 });
  await page.click('#advanced summary');

  const snap = await page.locator('main').ariaSnapshot();
  const unnamed = snap.split('\n').filter((l) => UNNAMED.test(l));
  assert.deepEqual(unnamed, [], `controls without an accessible name:\n${unnamed.join('\n')}`);
  for (const [role, name] of [['button', 'Train'], ['button', 'Stop'], ['button', 'Search'], ['combobox', /^Mode/], ['searchbox', 'Question'],
    ['button', 'Download .zip'], ['table', 'Held-out retrieval quality before and after training'], ['list', 'Search results']])
    assert.equal(await page.getByRole(role, { name, exact: typeof name === 'string', includeHidden: true }).count(), 1, `${role} "${name}"`);

  const order = await tabOrder(page);
  for (const id of ['btn-train', 'search-q', 'search-mode', 'btn-search', 'btn-zip', 'opt-loss', 'opt-epochs'])
    assert.ok(order.includes(id), `Tab reaches #${id}: ${order.join(' ')}`);
  assert.ok(order.indexOf('btn-train') < order.indexOf('search-q'), 'Train comes before the search box');

  // search from the keyboard: focus the box, type, Enter; the results are read as a list with a name
  await page.focus('#search-q');
  await page.keyboard.type('partition editor');
  await page.keyboard.press('Enter');
  await page.waitForSelector('#search-results li');
  await page.focus('#search-mode');
  await page.keyboard.press('ArrowDown'); // hybrid -> dense
  await page.waitForFunction(() => /by cosine/.test(document.getElementById('search-status').textContent));
  // Train from the keyboard (Enter on the focused button), then Stop from the keyboard
  await page.fill('#opt-epochs', '1');
  await page.focus('#btn-train');
  await page.keyboard.press('Enter');
  await page.waitForSelector('body[data-train="running"]');
  await page.waitForSelector('body[data-phase="train"]', { timeout: 120000 });
  await page.focus('#btn-stop');
  await page.keyboard.press('Enter');
  await page.waitForSelector('body[data-train="stopped"], body[data-train="done"]', { timeout: 120000 });
});
