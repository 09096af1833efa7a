// Memory at scale (issue 14 item 3): a run whose up-front memory estimate exceeds the budget is refused before any
// encoding, with the figures, by the same C estimate as native `embedtune finetune` (et_train_plan_bytes +
// et_encode_plan_bytes in finetune.c): the page's message equals the CLI's for the same file, settings, threads
// and --mem-budget. Without a budget the page's run is checked against what the wasm heap can still give
// (et_wasm_mem_budget_mb), which the result reports. The 10k-pairs / 50k-passages run itself is a bench
// (bench/web_scale.mjs): it takes minutes, too long for this stage.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { REPO, openPage, closePage, foreign } from './helpers.mjs';

const PAIRS = path.join(REPO, 'tests/fixtures/train/debian_pairs.jsonl');
const NATIVE = process.env.ET_NATIVE_EMBEDTUNE || path.join(REPO, 'build/embedtune');
let server, b, work;

before(async () => ({ server, b, work } = await openPage('et-web-scale-')));
after(() => closePage({ server, b, work }));

test('a run over the memory budget is refused up front with the figures native finetune gives', async () => {
  const { page, requests } = b;
  await page.goto(server.origin + '/');
  await page.waitForSelector('body[data-model="ready"]', { timeout: 60000 });
  await page.setInputFiles('#data-file', PAIRS);
  await page.waitForSelector('body[data-data="ready"]', { timeout: 60000 });
  await page.click('#advanced summary');
  for (const [id, v] of [['#opt-batch', '32'], ['#opt-negatives', '7'], ['#opt-maxlen', '128'], ['#opt-mem', '40']]) await page.fill(id, v);
  const t0 = Date.now();
  await page.click('#btn-train');
  await page.waitForSelector('body[data-train="error"]', { timeout: 120000 });
  const secs = (Date.now() - t0) / 1000;
  const status = await page.textContent('#train-status');
  const s = await page.evaluate(() => window.__embedtune.state());
  assert.match(status, /^Refused before starting: this run needs about [\d.]+ MiB \(training [\d.]+: batch 32 x 7 negatives, max length 128;.*the memory budget is 40\.0 MiB/);
  assert.deepEqual(s.phases.filter((p) => !['load', 'parse'].includes(p)), [], `refused before any encoding (phases: ${s.phases})`);
  assert.equal(s.trained, false);
  // the same estimate natively
  if (!existsSync(NATIVE)) assert.fail(`${NATIVE} not built`);
  const model = path.join(REPO, 'models', s.model.split(' ')[0]);
  const p = spawnSync(NATIVE, ['finetune', '--model', model, '--data', PAIRS, '--out', path.join(work, 'out'), '-q', '--threads', String(s.info.threads),
    ...s.args], { encoding: 'utf8' });
  assert.equal(p.status, 1, p.stderr);
  const native = p.stderr.trim().split('\n').pop().replace(/^embedtune finetune: (error: )?/, '');
  assert.equal(status.replace(/^Refused before starting: /, ''), native);
  console.log(`# refused in ${secs.toFixed(1)} s: ${native.slice(0, 90)}…`);
  assert.deepEqual(foreign(requests, server.origin), []);
});
