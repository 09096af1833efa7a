// "Adapter only (LoRA)" in a real browser: the page runs `embedtune finetune --lora R` (the C command) in its worker,
// shows the adapter's size, and offers two downloads through its one zip path: the PEFT adapter folder and the
// merged model. Natively (build/embedtune), the downloaded adapter on the base (`encode --model BASE --adapter DIR`,
// and `encode --model DIR`, whose base_model_name_or_path the page wrote as models/compact) and the merged folder
// encode as the page does (1e-4); the adapter files are PEFT-shaped (config fields, key names, shapes); native
// `finetune --lora` with the same settings gives the same before/after numbers. Then the page loads the base + the
// downloaded adapter folder ("Add a LoRA adapter folder": the C loader's et_lora_apply_dir) and encodes the same
// again, and "Remove the adapter" gives the base back. No request leaves the origin.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { REPO, openPage, closePage, foreign, unzipStore } from './helpers.mjs';

const PAIRS = path.join(REPO, 'tests/fixtures/train/debian_pairs.jsonl');
const NATIVE = process.env.ET_NATIVE_EMBEDTUNE || path.join(REPO, 'build/embedtune');
let server, b, work;

before(async () => ({ server, b, work } = await openPage('et-web-lora-')));
after(() => closePage({ server, b, work }));

const texts = ['Plan 9 userland tools', 'partition editor for Acorn machines', 'a tool to resize images from the command line',
  'Ünïcödé — naïve café', 'x'];
function nativeEncode(args, cwd = REPO) {
  writeFileSync(path.join(work, 'texts.txt'), texts.join('\n') + '\n');
  const out = execFileSync(NATIVE, ['encode', ...args, '--in', path.join(work, 'texts.txt'), '-q'], { encoding: 'utf8', cwd });
  return out.trim().split('\n').map((l) => JSON.parse(l).embedding);
}
const maxDiff = (rows, web) => {
  const dim = web.length / texts.length;
  let m = 0;
  rows.forEach((v, i) => { assert.equal(v.length, dim); v.forEach((x, k) => { m = Math.max(m, Math.abs(x - web[i * dim + k])); }); });
  return m;
};
/** a safetensors file -> {name: {dtype, shape}} (its JSON header) */
function safetensorsHeader(buf) {
  const n = Number(buf.readBigUInt64LE(0));
  const h = JSON.parse(buf.subarray(8, 8 + n).toString('utf8'));
  delete h.__metadata__;
  return h;
}
async function download(page, button, dir) {
  const [dl] = await Promise.all([page.waitForEvent('download'), page.click(button)]);
  const zip = path.join(work, dl.suggestedFilename());
  await dl.saveAs(zip);
  const files = unzipStore(readFileSync(zip));
  for (const [x, data] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(dir, x)), { recursive: true });
    writeFileSync(path.join(dir, x), data);
  }
  const top = Object.keys(files)[0].split('/')[0];
  return { name: dl.suggestedFilename(), top: path.join(dir, top), files: Object.keys(files).map((x) => x.slice(top.length + 1)) };
}

// a short run: 1 epoch, no dev split (so the adapter is trained, not kept at B = 0), rank 4 on query, value and the
// attention output
const ARGS = ['--loss', 'infonce', '--epochs', '1', '--max-len', '32', '--seed', '5', '--negatives', '1', '--refresh-every', '0', '--dev', 'off',
  '--lora', '4', '--lora-targets', 'q,v,o', '--lora-base', 'models/compact'];

test('Adapter only (LoRA): finetune --lora in the worker, adapter + merged downloads; native encode agrees; base + adapter loads', async () => {
  const { page, requests } = b;
  await page.goto(server.origin + '/');
  await page.waitForSelector('body[data-model="ready"]', { timeout: 60000 });
  const info0 = await page.evaluate(() => window.__embedtune.state().info);
  assert.match(await page.evaluate(() => window.__embedtune.state().model), /^compact /, 'the bundled model is models/compact');
  await page.setInputFiles('#data-file', PAIRS);
  await page.waitForSelector('body[data-data="ready"]', { timeout: 60000 });
  await page.click('#advanced summary');
  // the LoRA fields are off until "Adapter only" is ticked; each has help text
  assert.equal(await page.isDisabled('#opt-lora-r'), true);
  await page.check('#opt-lora');
  assert.equal(await page.isDisabled('#opt-lora-r'), false);
  for (const id of ['#opt-lora-r', '#opt-lora-alpha', '#opt-lora-dropout'])
    assert.ok((await page.locator(id).locator('xpath=..').getAttribute('title')).length > 40, `${id} has help text`);
  assert.match(await page.locator('#opt-lora').locator('xpath=..').getAttribute('title'), /--lora R/);
  assert.equal(await page.getAttribute('#opt-lora-r', 'placeholder'), '8', 'empty rank: 8');
  for (const [id, v] of [['#opt-epochs', '1'], ['#opt-maxlen', '32'], ['#opt-seed', '5'], ['#opt-negatives', '1'], ['#opt-refresh', '0'], ['#opt-lora-r', '4']]) await page.fill(id, v);
  await page.selectOption('#opt-dev', 'off');
  await page.check('#opt-lora-t-o');
  // no layer chosen: refused before the run
  for (const t of ['q', 'v', 'o']) await page.uncheck(`#opt-lora-t-${t}`);
  await page.click('#btn-train');
  assert.match(await page.textContent('#train-status'), /choose at least one layer/);
  for (const t of ['q', 'v', 'o']) await page.check(`#opt-lora-t-${t}`);
  const t0 = Date.now();
  await page.click('#btn-train');
  await page.waitForSelector('body[data-train="done"]', { timeout: 600000 });
  const s = await page.evaluate(() => window.__embedtune.state());
  console.log(`# page: LoRA run, ${s.result.counts.steps} steps in ${Date.now() - t0} ms`);
  assert.deepEqual(s.args, ARGS, 'the page passed the LoRA settings as finetune options');
  assert.equal(s.info.adapters.length, 1, 'the worker\'s model is the base with the adapter merged in');
  // the adapter's size is shown (status line and the download section), beside the whole model's
  assert.equal(s.adapter.r, 4);
  assert.deepEqual(s.adapter.files.sort(), ['adapter_config.json', 'adapter_model.safetensors', 'retrieval.json']);
  assert.match(await page.textContent('#train-status'), /; LoRA adapter r 4, alpha 8, on (query|value|attention\.output\.dense)(, (query|value|attention\.output\.dense)){2}, \d+(\.\d)? KB \(the base's model\.safetensors: \d+\.\d MB\)\.$/);
  const adText = await page.textContent('#adapter-info');
  assert.ok(await page.isVisible('#adapter-info') && await page.isVisible('#btn-adapter-zip'), 'the adapter download is offered');
  assert.match(adText, /LoRA adapter compact-lora-r4: 3 files, \d+(\.\d)? KB \(r 4, alpha 8, .*base models\/compact\); the base's model\.safetensors: \d+\.\d MB/);
  assert.equal(await page.textContent('#btn-zip'), 'Download the merged model (.zip)');
  console.log(`# ${adText}`);

  // both downloads, through the page's one zip path
  const ad = await download(page, '#btn-adapter-zip', path.join(work, 'a'));
  const mg = await download(page, '#btn-zip', path.join(work, 'm'));
  assert.equal(ad.name, 'compact-lora-r4.zip');
  assert.equal(mg.name, 'compact-tuned.zip');
  assert.deepEqual(ad.files.sort(), ['adapter_config.json', 'adapter_model.safetensors', 'retrieval.json']);
  for (const f of ['config.json', 'vocab.txt', 'model.safetensors', 'modules.json', '1_Pooling/config.json', 'retrieval.json'])
    assert.ok(mg.files.includes(f), `the merged zip has ${f}: ${mg.files}`);
  assert.ok(!mg.files.includes('adapter_config.json'), 'the merged folder is a plain model folder');

  // PEFT's shape: adapter_config.json's fields, adapter_model.safetensors' key names and shapes
  const cfg = JSON.parse(readFileSync(path.join(ad.top, 'adapter_config.json'), 'utf8'));
  assert.equal(cfg.peft_type, 'LORA');
  assert.equal(cfg.r, 4);
  assert.equal(cfg.lora_alpha, 8);
  assert.equal(cfg.lora_dropout, 0.1);
  assert.equal(cfg.bias, 'none');
  assert.equal(cfg.base_model_name_or_path, 'models/compact');
  assert.equal(cfg.task_type, 'FEATURE_EXTRACTION');
  assert.deepEqual([...cfg.target_modules].sort(), ['attention.output.dense', 'query', 'value']);
  const hdr = safetensorsHeader(readFileSync(path.join(ad.top, 'adapter_model.safetensors')));
  const C = info0.dim, L = info0.layers, keys = Object.keys(hdr).sort();
  const want = [];
  for (let l = 0; l < L; l++)
    for (const m of ['attention.self.query', 'attention.self.value', 'attention.output.dense'])
      for (const ab of ['A', 'B']) want.push(`base_model.model.encoder.layer.${l}.${m}.lora_${ab}.weight`);
  assert.deepEqual(keys, want.sort(), 'PEFT key names, every layer, the three targets');
  for (const [k, v] of Object.entries(hdr)) {
    assert.equal(v.dtype, 'F32', k);
    assert.deepEqual(v.shape, k.includes('lora_A') ? [4, C] : [C, 4], `${k}: A [r, in], B [out, r]`);
  }

  // natively: the adapter on the base, the adapter folder alone (its base resolved from the repository's root) and
  // the merged folder all encode as the page does
  if (!existsSync(NATIVE)) assert.fail(`${NATIVE} not built`);
  const web = await page.evaluate((t) => window.__embedtune.encode(t), texts);
  const base = path.join(REPO, 'models/compact');
  const dAdapter = maxDiff(nativeEncode(['--model', base, '--adapter', ad.top]), web);
  const dAlone = maxDiff(nativeEncode(['--model', ad.top]), web);
  const dMerged = maxDiff(nativeEncode(['--model', mg.top]), web);
  const dBase = maxDiff(nativeEncode(['--model', base]), web);
  console.log(`# page vs native encode: base --adapter ${dAdapter.toExponential(2)}, adapter folder ${dAlone.toExponential(2)}, merged folder ${dMerged.toExponential(2)} (the base alone: ${dBase.toExponential(2)})`);
  assert.ok(dAdapter <= 1e-4, `base + --adapter: ${dAdapter}`);
  assert.ok(dAlone <= 1e-4, `adapter folder as --model: ${dAlone}`);
  assert.ok(dMerged <= 1e-4, `merged folder: ${dMerged}`);
  assert.ok(dBase > 1e-3, 'the adapter changed the embeddings');

  // the same C pipeline: native finetune --lora with the same settings and threads gives the same numbers
  const nout = path.join(work, 'native-out'), njson = path.join(work, 'native.json');
  const p = spawnSync(NATIVE, ['finetune', '--model', base, '--data', PAIRS, '--out', nout, '--json', njson, '-q', '--threads', String(s.info.threads), ...ARGS],
    { encoding: 'utf8', cwd: REPO });
  assert.equal(p.status, 0, p.stderr);
  const n = JSON.parse(readFileSync(njson, 'utf8'));
  assert.deepEqual(s.result.counts, n.counts);
  assert.deepEqual(s.result.settings, n.settings, 'same resolved settings');
  assert.deepEqual([s.result.settings.lora_r, s.result.settings.lora_alpha, s.result.settings.lora_dropout, s.result.settings.lora_targets], [4, 8, 0.1, 'q,v,o'],
    'the --json report has the adapter\'s settings (Compare runs shows them)');
  let md = 0;
  for (const part of ['before', 'after', 'bm25'])
    for (const [k, v] of Object.entries(n[part])) { md = Math.max(md, Math.abs(v - s.result[part][k])); assert.ok(Math.abs(v - s.result[part][k]) <= 1e-4, `${part} ${k}: page ${s.result[part][k]}, native ${v}`); }
  const dRun = maxDiff(nativeEncode(['--model', nout]), web);
  console.log(`# page vs native finetune --lora: table max |diff| ${md.toExponential(2)}, native adapter's embeddings ${dRun.toExponential(2)}`);
  assert.ok(dRun <= 1e-4, `native finetune --lora's adapter: ${dRun}`);

  // the page loads the base + the downloaded adapter folder (the C loader merges it) and encodes the same
  const half = path.join(work, 'half-adapter');
  mkdirSync(half);
  writeFileSync(path.join(half, 'adapter_config.json'), readFileSync(path.join(ad.top, 'adapter_config.json')));
  await page.setInputFiles('#adapter-folder', half);
  await page.waitForFunction(() => /Could not load that adapter/.test(document.getElementById('model-status').textContent));
  assert.match(await page.textContent('#model-status'), /lacks adapter_model\.safetensors/);
  await page.setInputFiles('#adapter-folder', ad.top);
  await page.waitForFunction(() => window.__embedtune.state().info?.adapters?.length === 1 && !window.__embedtune.state().trained
    && document.body.dataset.model === 'ready', null, { timeout: 60000 });
  assert.match(await page.textContent('#model-info'), /LoRA adapter.*r 4, alpha 8/);
  const loaded = await page.evaluate((t) => window.__embedtune.encode(t), texts);
  const dLoaded = Math.max(...loaded.map((x, i) => Math.abs(x - web[i])));
  console.log(`# page, base + the downloaded adapter loaded: vs the run's model ${dLoaded.toExponential(2)}`);
  assert.ok(dLoaded <= 1e-6, `base + adapter loaded in the page: ${dLoaded}`);
  // search runs on it (the passages are encoded again with the loaded model)
  await page.waitForSelector('body[data-corpus="ready"]', { timeout: 120000 });
  await page.fill('#search-q', 'partition editor');
  await page.press('#search-q', 'Enter');
  await page.waitForSelector('#search-results li');
  // a run on the model loaded with an adapter starts from that model (merged, saved f32 for the run): its "before"
  // is the first run's "after"; the new adapter names that merged model as its base (the .zip the page gave before
  // this run), and natively the merged folder + the new adapter encode as the page does
  const mg0 = await download(page, '#btn-zip', path.join(work, 'm0'));
  assert.equal(path.basename(mg0.top), 'compact-merged');
  await page.fill('#opt-lora-r', '2');
  await page.click('#btn-train');
  await page.waitForSelector('body[data-train="done"]', { timeout: 600000 });
  const s2 = await page.evaluate(() => window.__embedtune.state());
  assert.equal(s2.args[s2.args.indexOf('--lora-base') + 1], 'compact-merged');
  for (const [k, v] of Object.entries(s.result.after)) assert.ok(Math.abs(v - s2.result.before[k]) <= 1e-6, `before ${k}: ${s2.result.before[k]}, the first run's after ${v}`);
  const ad2 = await download(page, '#btn-adapter-zip', path.join(work, 'a2'));
  assert.equal(JSON.parse(readFileSync(path.join(ad2.top, 'adapter_config.json'), 'utf8')).base_model_name_or_path, 'compact-merged');
  const web2 = await page.evaluate((t) => window.__embedtune.encode(t), texts);
  const d2 = maxDiff(nativeEncode(['--model', mg0.top, '--adapter', ad2.top]), web2);
  console.log(`# a second adapter over the loaded base + adapter: native merged folder --adapter vs the page ${d2.toExponential(2)}`);
  assert.ok(d2 <= 1e-4, `second adapter: ${d2}`);
  // "Remove the adapter": the base alone again
  await page.click('#btn-adapter-clear');
  await page.waitForFunction(() => window.__embedtune.state().info?.adapters?.length === 0 && document.body.dataset.model === 'ready', null, { timeout: 60000 });
  const plain = await page.evaluate((t) => window.__embedtune.encode(t), texts);
  assert.ok(maxDiff(nativeEncode(['--model', base]), plain) <= 1e-4, 'the base alone after removing the adapter');
  assert.equal(await page.isVisible('#btn-adapter-zip'), false);
  const bad = foreign(requests, server.origin);
  assert.deepEqual(bad, [], `requests that left the origin: ${bad.join(', ')}`);
});
