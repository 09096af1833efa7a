#!/usr/bin/env node
// web_scale.mjs - the page at scale in headless Chromium (issue 14 item 3; a benchmark, not a test): time per
// phase of a whole run (`embedtune finetune` in the page's worker) for pairs files of 1k and 10k rows, the
// second with a 50k-passage corpus file, on 2 wasm threads (navigator.hardwareConcurrency is set to 2).
//   node bench/web_scale.mjs [PAIRS:PASSAGES ...]     (default: 1000:0 10000:50000)
// Env: ET_WASM_BUILD (build-wasm), ET_SCALE_DIR (where the generated data is kept; default /tmp/et-web-scale),
//      ET_SCALE_EPOCHS (default 1: one epoch; empty = the automatic plan), ET_CHROMIUM,
//      ET_SCALE_TRAIN_S (default none): stop a run once it has trained this many seconds, and report the train
//      phase's ETA at that point instead of its time (for a run that cannot finish in the time at hand).
// Each row also gives the evaluation's steps (eval_before: encoding, BM25 index, candidates, the fusion set, the
// fusion's cross-validation) from the page's step records (__embedtune.state().stepTimes).
// The data comes from the machine's manual pages (bench/make_scale_data.mjs; not committed). Needs
// web/node_modules/playwright-core (tools/setup.sh). Prints one row per phase and a markdown table.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const { startServer, openBrowser, foreign } = await import(path.join(HERE, '../web/tests/helpers.mjs'));
const sizes = (process.argv.slice(2).length ? process.argv.slice(2) : ['1000:0', '10000:50000']).map((s) => s.split(':').map(Number));
const DIR = process.env.ET_SCALE_DIR || '/tmp/et-web-scale';
const EPOCHS = process.env.ET_SCALE_EPOCHS ?? '1';
const PHASES = ['load', 'parse', 'eval_before', 'mine', 'experts', 'train', 'refresh', 'eval_after'];
const TRAIN_S = process.env.ET_SCALE_TRAIN_S ? Number(process.env.ET_SCALE_TRAIN_S) : 0;

function data(nPairs, nPass) {
  const d = path.join(DIR, `${nPairs}_${nPass}`);
  if (!existsSync(path.join(d, 'pairs.jsonl'))) {
    const p = spawnSync(process.execPath, [path.join(HERE, 'make_scale_data.mjs'), d, String(nPairs), String(Math.max(nPass, 1))], { stdio: 'inherit' });
    if (p.status) process.exit(1);
  }
  return { pairs: path.join(d, 'pairs.jsonl'), corpus: nPass ? path.join(d, 'corpus.txt') : null };
}

const server = await startServer();
const rows = [];
for (const [nPairs, nPass] of sizes) {
  const f = data(nPairs, nPass);
  const b = await openBrowser(server.origin);
  const { page, requests } = b;
  await page.addInitScript(() => Object.defineProperty(navigator, 'hardwareConcurrency', { get: () => 2 }));
  await page.goto(server.origin + '/');
  await page.waitForSelector('body[data-model="ready"]', { timeout: 120000 });
  let t = Date.now();
  await page.setInputFiles('#data-file', f.pairs);
  await page.waitForSelector('body[data-data="ready"]', { timeout: 600000 });
  const tRead = (Date.now() - t) / 1000;
  if (f.corpus) {
    await page.setInputFiles('#corpus-file', f.corpus);
    await page.waitForSelector('body[data-extra="ready"]', { timeout: 600000 });
  }
  t = Date.now();
  await page.waitForFunction(() => document.body.dataset.corpus === 'ready', null, { timeout: 3600000, polling: 1000 });
  const tIndex = (Date.now() - t) / 1000;
  await page.click('#advanced summary');
  if (EPOCHS) await page.fill('#opt-epochs', EPOCHS);
  t = Date.now();
  const tick = setInterval(() => page.textContent('#train-eta').then((x) => console.error(`# ${nPairs}:${nPass} ${((Date.now() - t) / 1000).toFixed(0)} s: ${x}`)).catch(() => {}), 30000);
  await page.click('#btn-train');
  let stopped = null;
  if (TRAIN_S) { // wait until the run has trained TRAIN_S seconds (or ended), then read the train ETA and stop it
    await page.waitForFunction(() => document.body.dataset.phase === 'train' || ['done', 'error'].includes(document.body.dataset.train), null,
      { timeout: 6 * 3600000, polling: 2000 });
    if (!['done', 'error'].includes(await page.evaluate(() => document.body.dataset.train))) {
      await new Promise((res) => setTimeout(res, TRAIN_S * 1000));
      stopped = { eta: await page.textContent('#train-eta'), state: await page.evaluate(() => window.__embedtune.state()) };
      await page.click('#btn-stop');
    }
  }
  await page.waitForFunction(() => ['done', 'error', 'stopped'].includes(document.body.dataset.train), null, { timeout: 6 * 3600000, polling: 2000 });
  clearInterval(tick);
  const total = (Date.now() - t) / 1000;
  const s = stopped ? stopped.state : await page.evaluate(() => window.__embedtune.state());
  if (!s.trained && !stopped) { console.error(await page.textContent('#train-status')); process.exit(1); }
  const times = s.phaseTimes, r = s.result;
  const row = { pairs: nPairs, passages: nPass, threads: s.info.threads, read: tRead, index: tIndex, total: stopped ? null : total,
    steps: r ? r.counts.steps : null, memory: r ? r.memory : null, ndcg: r ? [r.before['ndcg@10'], r.after['ndcg@10']] : null,
    stopped: stopped ? stopped.eta : undefined };
  for (const p of PHASES) row[p] = times[p] ? (times[p].end ?? times[p].start) - times[p].start : 0;
  row.evalSteps = Object.fromEntries(Object.entries(s.stepTimes || {}).filter(([k]) => k.startsWith('eval_'))
    .map(([k, v]) => [k, v.end != null ? +(v.end - v.start).toFixed(1) : null]));
  rows.push(row);
  console.log(JSON.stringify(row));
  if (foreign(requests, server.origin).length) { console.error('requests left the origin'); process.exit(1); }
  await b.close();
}
await server.close();
const f1 = (x) => (x == null ? '–' : x.toFixed(1));
console.log(`\n| pairs | corpus passages | threads | read file | index for search | ${PHASES.join(' | ')} | run total | steps | memory estimate / budget (MB) | nDCG@10 before → after |`);
console.log(`|${' --- |'.repeat(PHASES.length + 10)}`);
for (const r of rows)
  console.log(`| ${r.pairs} | ${r.passages} | ${r.threads} | ${f1(r.read)} s | ${f1(r.index)} s | ${PHASES.map((p) => `${f1(r[p])} s`).join(' | ')} | ` +
    `${r.stopped ? `stopped in train: ${r.stopped}` : `${f1(r.total)} s`} | ${r.steps ?? '–'} | ` +
    `${r.memory ? `${Math.round(r.memory.estimate_mib)} / ${Math.round(r.memory.budget_mib)}` : '–'} | ${r.ndcg ? `${r.ndcg[0].toFixed(3)} → ${r.ndcg[1].toFixed(3)}` : '–'} |`);
