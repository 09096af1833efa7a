// The main flow in a real browser. The page runs `embedtune finetune` (the C command) in its worker:
//   upload -> automatic settings (+ a few in "Advanced") -> train (phases reported: load, parse, eval_before,
//   mine, train, refresh, eval_after, done; eval_before's steps, the fusion's cross-validation among them) -> before/after table with BM25 beside -> search (dense and BM25)
//   with title + snippet + highlighted terms + "show more" -> download; the NATIVE CLI on the same file, seed
//   and settings gives the same before/after table (1e-4) and, loading the downloaded zip, the same embeddings;
//   no request leaves the origin.
// Also: Stop cancels a run inside the C code; Train clicked while the search passages are being encoded
// starts at once (the encoding is cancelled, not queued in front of the run); bad lines are named exactly as
// the CLI names them.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { REPO, WEB, openPage, closePage, foreign, unzipStore } from './helpers.mjs';

const PAIRS = path.join(REPO, 'tests/fixtures/train/debian_pairs.jsonl');
const NATIVE = process.env.ET_NATIVE_EMBEDTUNE || path.join(REPO, 'build/embedtune');
let server, b, work;

before(async () => ({ server, b, work } = await openPage('et-web-')));
after(() => closePage({ server, b, work }));

// the settings of the parity run (the rest: finetune's defaults, identical on both sides)
// (--dev off: every epoch is trained and the last step kept, so the downloaded model must differ from the start)
const SETTINGS = { epochs: '2', lr: '0.0001', batch: '16', maxlen: '64', seed: '7', negatives: '3', dev: 'off' };
const CLI_ARGS = ['--loss', 'infonce', '--epochs', '2', '--lr', '0.0001', '--batch', '16', '--max-len', '64', '--seed', '7', '--negatives', '3', '--dev', 'off'];

async function setSettings(page, s) {
  if (!(await page.getAttribute('#advanced', 'open') !== null)) await page.click('#advanced summary');
  const ids = { epochs: '#opt-epochs', lr: '#opt-lr', batch: '#opt-batch', maxlen: '#opt-maxlen', seed: '#opt-seed', negatives: '#opt-negatives', refresh: '#opt-refresh', dev: '#opt-dev' };
  for (const [k, v] of Object.entries(s)) {
    if (k === 'dev') await page.selectOption(ids[k], v); else await page.fill(ids[k], v);
  }
}

async function ready(page, file = PAIRS) {
  await page.goto(server.origin + '/');
  await page.waitForSelector('body[data-model="ready"]', { timeout: 60000 });
  await page.setInputFiles('#data-file', file);
  await page.waitForSelector('body[data-data="ready"]', { timeout: 60000 });
}

const texts = ['Plan 9 userland tools', 'partition editor for Acorn machines', 'a tool to resize images from the command line',
  'Ünïcödé — naïve café', 'x'];
const vec = (r) => r.embedding || r.vector || r.emb || (Array.isArray(r) ? r : Object.values(r).find(Array.isArray));
function nativeEncode(model) {
  writeFileSync(path.join(work, 'texts.txt'), texts.join('\n') + '\n');
  const out = execFileSync(NATIVE, ['encode', '--model', model, '--in', path.join(work, 'texts.txt'), '-q'], { encoding: 'utf8' });
  return out.trim().split('\n').map((l) => vec(JSON.parse(l)));
}

test('upload, train (embedtune finetune in the worker), before/after with BM25, search with snippets, download; native finetune agrees', async () => {
  const { page, requests } = b;
  const t0 = Date.now();
  await ready(page);
  assert.equal(await page.evaluate(() => crossOriginIsolated), true, 'the page is cross-origin isolated');
  const info = await page.evaluate(() => window.__embedtune.state().info);
  assert.ok(info.threads >= 2, `threads: ${info.threads}`);
  console.log(`# model + data ready in ${Date.now() - t0} ms (${info.threads} threads, ${info.simd})`);
  const st = await page.evaluate(() => window.__embedtune.state());
  assert.equal(st.rows, 200);
  assert.deepEqual(st.errors, []);
  const split = (await page.textContent('#data-status')).match(/200 pairs \((\d+) train, (\d+) held out\)/);
  assert.ok(split, await page.textContent('#data-status'));
  assert.equal(await page.locator('#preview tbody tr').count(), 50);

  await setSettings(page, SETTINGS);
  const t1 = Date.now();
  await page.click('#btn-train');
  await page.waitForSelector('body[data-train="done"]', { timeout: 600000 });
  const s = await page.evaluate(() => window.__embedtune.state());
  const r = s.result;
  console.log(`# page: ${r.counts.steps} steps, ${r.counts.refreshes} refreshes in ${Date.now() - t1} ms; phases ${s.phases.join(' ')}`);
  assert.deepEqual(s.args, CLI_ARGS, 'the page passed the settings as finetune options');
  assert.deepEqual(s.phases, ['load', 'parse', 'eval_before', 'mine', 'train', ...Array(r.counts.refreshes).fill(['refresh', 'train']).flat(), 'eval_after', 'done']);
  assert.ok(r.counts.mined_negatives > 0 && r.counts.refreshes > 0, 'ANCE mining with refresh');
  assert.equal(s.steps, r.counts.steps, 'every step reached the loss chart');
  // the evaluation's steps report through the same C callback (et_ft_progress.step), the fusion's too: each one
  // counted up to its total, so the phase list has an ETA there
  const stepT = s.stepTimes;
  for (const k of ['eval_before/encode eval corpus', 'eval_before/BM25 index', 'eval_before/candidates',
    'eval_before/fusion set: candidates', 'eval_before/fusion cross-validation'])
    assert.ok(stepT[k] && stepT[k].total > 0 && stepT[k].done === stepT[k].total && stepT[k].end >= stepT[k].start, `step ${k}: ${JSON.stringify(stepT[k])}`);
  assert.equal(stepT['eval_before/fusion cross-validation'].unit, 'grid points');
  // the table: BM25, dense before/after, change
  assert.deepEqual(await page.locator('#eval-table thead th').allTextContents(), ['metric', 'BM25', 'dense before', 'dense after', 'change', 'hybrid before', 'hybrid after']);
  assert.equal(await page.locator('#eval-table tbody tr').count(), 7);
  const ndcgRow = await page.locator('#eval-table tbody tr[data-metric="ndcg@10"] td').allTextContents();
  assert.deepEqual(ndcgRow.slice(1, 4), [r.bm25['ndcg@10'], r.before['ndcg@10'], r.after['ndcg@10']].map((x) => x.toFixed(4)));
  assert.deepEqual(ndcgRow.slice(5, 7), [r.hybrid.before.hybrid_default['ndcg@10'], r.hybrid.after.hybrid_learned['ndcg@10']].map((x) => x.toFixed(4)));

  // parity: native `embedtune finetune`, same file, seed, settings and thread count
  if (!existsSync(NATIVE)) assert.fail(`${NATIVE} not built`);
  const model = path.join(REPO, 'models', s.model.split(' ')[0]);
  const nout = path.join(work, 'native-out'), njson = path.join(work, 'native.json');
  const t2 = Date.now();
  const p = spawnSync(NATIVE, ['finetune', '--model', model, '--data', PAIRS, '--out', nout, '--json', njson, '-q', '--threads', String(info.threads), ...CLI_ARGS], { encoding: 'utf8' });
  assert.equal(p.status, 0, p.stderr);
  const n = JSON.parse(readFileSync(njson, 'utf8'));
  console.log(`# native finetune: ${Date.now() - t2} ms`);
  assert.deepEqual(r.counts, n.counts, 'same counts (train/test split, examples, steps, mined negatives, refreshes)');
  // finetune carves its dev split (early stopping) out of the training side: trained + dev = the preview's train count
  const dev = r.settings.dev ? r.settings.dev_size : 0;
  assert.deepEqual([r.counts.train + dev, r.counts.test], [+split[1], +split[2]], 'the preview\'s split is the run\'s (200 distinct queries; train includes the dev split)');
  assert.deepEqual(r.settings, n.settings, 'same resolved settings');
  let maxd = 0;
  for (const part of ['before', 'after', 'bm25'])
    for (const [k, v] of Object.entries(n[part])) {
      const d = Math.abs(v - r[part][k]);
      maxd = Math.max(maxd, d);
      assert.ok(d <= 1e-4, `${part} ${k}: page ${r[part][k]}, native ${v}`);
    }
  for (const w of ['before', 'after'])
    for (const sys of ['dense', 'bm25', 'hybrid_default', 'hybrid_learned'])
      for (const [k, v] of Object.entries(n.hybrid[w][sys])) {
        const d = Math.abs(v - r.hybrid[w][sys][k]);
        maxd = Math.max(maxd, d);
        assert.ok(d <= 1e-4, `hybrid ${w} ${sys} ${k}: page ${r.hybrid[w][sys][k]}, native ${v}`);
      }
  assert.equal(r.hybrid.after.learned_fusion, n.hybrid.after.learned_fusion, 'same learned fusion');
  console.log(`# page vs native before/after/bm25/hybrid table: max |diff| ${maxd.toExponential(2)}`);

  // search: hybrid by default (the learned fusion of the run, retrieval.json), title + two-line snippet with
  // the query's terms marked, "show more"
  assert.equal(await page.inputValue('#search-mode'), 'hybrid', 'hybrid is the default search mode');
  await page.waitForSelector('body[data-corpus="ready"]', { timeout: 120000 });
  await page.fill('#search-q', 'partition editor');
  await page.press('#search-q', 'Enter');
  await page.waitForSelector('#search-results li');
  const items = page.locator('#search-results li');
  assert.equal(await items.count(), 10);
  assert.equal(await page.locator('#search-results li .hit-title').count(), 10);
  const marks = (await page.locator('#search-results mark').allTextContents()).map((m) => m.toLowerCase());
  assert.ok(marks.length > 0 && marks.every((m) => m === 'partition' || m === 'editor'), `marks: ${marks}`);
  // the page shows a passage with its whitespace collapsed (snippet.mjs displayText)
  const passages = readFileSync(PAIRS, 'utf8').trim().split('\n').map((l) => JSON.parse(l).positive.replace(/\s+/g, ' ').trim());
  const longOne = page.locator('#search-results li:has(button.more)').first();
  assert.ok(await longOne.count(), 'a long passage has "show more"');
  const snip = await longOne.locator('.hit-snippet').textContent();
  assert.ok(snip.length <= 240, `snippet is short: ${snip.length} chars`);
  await longOne.locator('button.more').click();
  const full = await longOne.locator('.hit-snippet').textContent();
  assert.ok(passages.includes(full), 'show more shows the whole passage');
  assert.equal(await longOne.locator('button.more').textContent(), 'show less');
  // every result is at most a title line + 2 snippet lines tall (a 700-word answer cannot fill the screen)
  const heights = await page.evaluate(() => [...document.querySelectorAll('#search-results li')].map((li) => {
    const s = li.querySelector('.hit-snippet');
    return s && !s.classList.contains('full') ? s.getBoundingClientRect().height / parseFloat(getComputedStyle(s).lineHeight) : 0;
  }));
  assert.ok(heights.every((h) => h < 2.5), `snippets are at most two lines: ${heights.map((h) => h.toFixed(1))}`);
  assert.match(await page.textContent('#search-status'), new RegExp(`by hybrid: BM25 \\+ the tuned model, ${r.hybrid.after.learned_fusion.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} \\(the model.s retrieval\\.json\\)`));
  // BM25 mode
  await page.selectOption('#search-mode', 'bm25');
  await page.waitForFunction(() => /by BM25/.test(document.getElementById('search-status').textContent));
  const top = await page.locator('#search-results li').first().textContent();
  assert.match(top.toLowerCase(), /partition|editor/);

  // download the zip; the native CLI loads it and encodes like the page; it is the model native finetune made
  const [dl] = await Promise.all([page.waitForEvent('download'), page.click('#btn-zip')]);
  const zipPath = path.join(work, 'model.zip');
  await dl.saveAs(zipPath);
  assert.match(dl.suggestedFilename(), /-tuned\.zip$/);
  const files = unzipStore(readFileSync(zipPath));
  const names = Object.keys(files);
  for (const f of ['config.json', 'vocab.txt', 'model.safetensors', 'modules.json', '1_Pooling/config.json'])
    assert.ok(names.some((x) => x.endsWith('/' + f)), `zip has ${f}: ${names.join(', ')}`);
  assert.ok(names.some((x) => x.endsWith('/retrieval.json')), 'the zip carries the learned fusion (retrieval.json)');
  const top_ = names[0].split('/')[0];
  for (const [x, data] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(work, x)), { recursive: true });
    writeFileSync(path.join(work, x), data);
  }
  // the three search modes are `embedtune search` itself: the native CLI on the downloaded folder (its
  // retrieval.json) and the page's passages ranks the same ids with the same scores
  const pass = await page.evaluate(() => window.__embedtune.passages());
  const corpusPath = path.join(work, 'passages.jsonl');
  writeFileSync(corpusPath, pass.map((t, i) => JSON.stringify({ _id: String(i), text: t })).join('\n') + '\n');
  for (const q of ['partition editor', 'how do I resize an image', 'tools for Plan 9']) {
    for (const mode of ['hybrid', 'dense', 'bm25']) {
      const ph = await page.evaluate(([qq, m]) => window.__embedtune.search(qq, m), [q, mode]);
      const no = execFileSync(NATIVE, ['search', '--model', path.join(work, top_), '--corpus', corpusPath, '--query', q, '--mode', mode,
        '--max-len', SETTINGS.maxlen, '-k', '10', '--json', '-q', '--threads', '2'], { encoding: 'utf8' });
      const nh = JSON.parse(no.trim()).results;
      assert.deepEqual(ph.map((h) => String(h.index)), nh.map((h) => h.id), `${mode} '${q}': same ranking as native search`);
      ph.forEach((h, i) => assert.ok(Math.abs(h.score - nh[i].score) < 1e-4, `${mode} '${q}' rank ${i + 1}: ${h.score} vs ${nh[i].score}`));
    }
  }
  // the search switches are `search --int8` and `search --dim N`: int8 at full size, then 64-value fp32 vectors
  for (const [dim, int8, flags] of [['0', true, ['--int8']], ['64', false, ['--dim', '64']]]) {
    await page.selectOption('#search-dim', dim);
    await page.setChecked('#search-int8', int8);
    // the passages are encoded again with these vectors (the status line says so until the next search replaces it)
    await page.waitForSelector(`body[data-corpus="ready"][data-vectors="${dim}:${int8 ? 'int8' : 'f32'}"]`, { timeout: 120000 });
    for (const q of ['partition editor', 'how do I resize an image']) {
      for (const mode of ['hybrid', 'dense']) {
        const ph = await page.evaluate(([qq, m]) => window.__embedtune.search(qq, m), [q, mode]);
        const no = execFileSync(NATIVE, ['search', '--model', path.join(work, top_), '--corpus', corpusPath, '--query', q, '--mode', mode,
          '--max-len', SETTINGS.maxlen, '-k', '10', '--json', '-q', '--threads', '2', ...flags], { encoding: 'utf8' });
        const nh = JSON.parse(no.trim()).results;
        assert.deepEqual(ph.map((h) => String(h.index)), nh.map((h) => h.id), `${flags.join(' ')} ${mode} '${q}': same ranking as native search`);
        ph.forEach((h, i) => assert.ok(Math.abs(h.score - nh[i].score) < 1e-4, `${flags.join(' ')} ${mode} '${q}' rank ${i + 1}: ${h.score} vs ${nh[i].score}`));
      }
    }
  }
  await page.selectOption('#search-dim', '0');
  await page.setChecked('#search-int8', false);
  await page.waitForSelector('body[data-corpus="ready"][data-vectors="0:f32"]', { timeout: 120000 });
  const web = await page.evaluate((t) => window.__embedtune.encode(t), texts);
  const dim = web.length / texts.length;
  const diff = (rows) => { let m = 0; rows.forEach((v, i) => { assert.equal(v.length, dim); v.forEach((x, k) => { m = Math.max(m, Math.abs(x - web[i * dim + k])); }); }); return m; };
  const dZip = diff(nativeEncode(path.join(work, top_)));
  const dNative = diff(nativeEncode(nout));
  console.log(`# embeddings: page vs native encode of the zip ${dZip.toExponential(2)}; page model vs native finetune's model ${dNative.toExponential(2)}`);
  assert.ok(dZip < 1e-4, `zip: max diff ${dZip}`);
  assert.ok(dNative < 1e-4, `native finetune's model: max diff ${dNative}`);
  const b0 = nativeEncode(model)[0];
  assert.equal(r.settings.dev, false, '--dev off reached finetune');
  assert.ok(b0.some((x, k) => Math.abs(x - web[k]) > 1e-3), 'the downloaded model is the tuned one');

  // the committed web/screenshot.png is refreshed only on request (UPDATE_SCREENSHOT=1): the table's BM25, dense
  // and hybrid columns and the search box in its default hybrid mode
  await page.selectOption('#search-mode', 'dense');
  await page.waitForFunction(() => /by cosine/.test(document.getElementById('search-status').textContent));
  await page.selectOption('#search-mode', 'hybrid');
  await page.waitForFunction(() => /by hybrid/.test(document.getElementById('search-status').textContent));
  const shot = process.env.UPDATE_SCREENSHOT === '1' ? path.join(WEB, 'screenshot.png') : path.join(tmpdir(), 'embedtune-page-after-training.png');
  await page.screenshot({ path: shot, fullPage: true });
  const bad = foreign(requests, server.origin);
  assert.deepEqual(bad, [], `requests that left the origin: ${bad.join(', ')}`);
  assert.ok(requests.some((u) => u.endsWith('/wasm/embedtune-core.worker.js')), 'pthread workers were seen by the request log');
});

test('Stop cancels the run inside the C code; the starting model stays usable', async () => {
  const { page, requests } = b;
  await ready(page);
  await page.waitForSelector('body[data-corpus="ready"]', { timeout: 60000 });
  await setSettings(page, { epochs: '3', maxlen: '64', negatives: '3' });
  await page.click('#btn-train');
  await page.waitForSelector('body[data-phase="train"]', { timeout: 120000 });
  await page.waitForFunction(() => window.__embedtune.state().steps >= 2, null, { timeout: 120000 });
  const t = Date.now();
  await page.click('#btn-stop');
  await page.waitForSelector('body[data-train="stopped"]', { timeout: 60000 });
  const s = await page.evaluate(() => window.__embedtune.state());
  console.log(`# stopped after ${s.steps} steps, ${Date.now() - t} ms after the click`);
  assert.equal(s.trained, false);
  assert.equal(s.result, null);
  assert.match(await page.textContent('#train-status'), /Stopped/);
  await page.waitForSelector('body[data-corpus="ready"]', { timeout: 60000 });
  await page.fill('#search-q', 'image');
  await page.press('#search-q', 'Enter');
  await page.waitForSelector('#search-results li');
  assert.deepEqual(foreign(requests, server.origin), []);
});

test('Train clicked while the passages are being encoded starts the run at once', async () => {
  // 480 distinct long passages: encoding them for the search box takes a while
  const rows = readFileSync(PAIRS, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  const big = [];
  for (let i = 0; i < 480; i++) {
    const a = rows[i % rows.length], c = rows[(i * 7 + 3) % rows.length], d = rows[(i * 13 + 5) % rows.length];
    big.push(JSON.stringify({ id: `r${i}`, query: `${a.query} (${i})`, positive: `${a.positive} ${c.positive} ${d.positive} [${i}]` }));
  }
  const f = path.join(work, 'long_passages.jsonl');
  writeFileSync(f, big.join('\n') + '\n');
  const { page } = b;
  await ready(page, f);
  await page.waitForSelector('body[data-corpus="encoding"]');
  await setSettings(page, { epochs: '1', maxlen: '32', negatives: '1', batch: '32', refresh: '0' });
  assert.match(await page.textContent('#search-status'), /Encoding 480 passages/);
  const t = Date.now();
  await page.click('#btn-train');
  // the search encoding is cancelled and the run's own phases start, instead of waiting behind it
  await page.waitForSelector('body[data-corpus="cancelled"]', { timeout: 5000 });
  await page.waitForFunction(() => ['load', 'parse', 'eval_before'].includes(document.body.dataset.phase), null, { timeout: 5000 });
  console.log(`# run started ${Date.now() - t} ms after the click`);
  await page.waitForSelector('body[data-train="done"]', { timeout: 600000 });
  await page.waitForSelector('body[data-corpus="ready"]', { timeout: 120000 });
  assert.match(await page.textContent('#search-status'), /480 passages ready for search \(tuned model\)/);
});

test('bad lines are named as the CLI names them, and the run refuses the file with the CLI\'s message', async () => {
  const f = path.join(work, 'with_bad_lines.jsonl');
  const lines = readFileSync(PAIRS, 'utf8').trim().split('\n').slice(0, 20);
  lines[4] = '{"query": "q", "positive": 5}';
  lines[9] = 'not json at all';
  writeFileSync(f, lines.join('\n') + '\n');
  const { page } = b;
  await ready(page, f);
  const errs = await page.locator('#data-error-list li').allTextContents();
  assert.equal(errs[0], "with_bad_lines.jsonl:5: field 'positive': expected a string");
  assert.equal(errs[1], 'with_bad_lines.jsonl:10: invalid JSON');
  assert.match(await page.textContent('#data-status'), /18 pairs .*2 bad lines/);
  await page.click('#btn-train');
  await page.waitForSelector('body[data-train="error"]', { timeout: 60000 });
  const p = spawnSync(NATIVE, ['finetune', '--model', path.join(REPO, 'models/compact'), '--data', f, '--out', path.join(work, 'bad-out'), '--loss', 'infonce', '-q'], { encoding: 'utf8' });
  const cli = p.stderr.trim().replace(/^embedtune finetune: error: /, '').split(f).join('with_bad_lines.jsonl');
  assert.equal(await page.textContent('#train-status'), `Training failed: ${cli}`);
});
