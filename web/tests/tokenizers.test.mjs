// Model folders without vocab.txt in the page: an XLM-R-shaped folder (SentencePiece: tokenizer.json +
// sentencepiece.bpe.model), the same with only sentencepiece.bpe.model, and a RoBERTa-shaped one with a byte-level
// BPE tokenizer (vocab.json + merges.txt). The random 2-layer model of tests/fixtures/xlmr with the test
// vocabularies of tests/fixtures/spm/xlmr and tests/fixtures/bpe. Each folder is picked in the page's folder input,
// loaded by the C loader the command uses (et_wasm_load_dir -> et_hf_load_tokenizer), and its embeddings must equal
// native `embedtune encode` of the same folder within 1e-5; the downloaded zip carries the tokenizer files.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { REPO, openPage, closePage, foreign } from './helpers.mjs';

const NATIVE = process.env.ET_NATIVE_EMBEDTUNE || path.join(REPO, 'build/embedtune');
let server, b, work;
before(async () => ({ server, b, work } = await openPage('et-web-tok-')));
after(() => closePage({ server, b, work }));

const texts = ['Der GNU-C++-Compiler und seine Bibliotheken', '古代戦争のリアルタイム戦略ゲーム', '오픈 소스 3D 그래픽 엔진',
  "It's  a <mask> test", 'Bibliothèque partagée '.repeat(30), 'x'];

function folder(name, tok, roberta = false) {
  const d = path.join(work, name);
  cpSync(path.join(REPO, 'tests/fixtures/xlmr/model'), d, { recursive: true });
  if (roberta) {
    const c = path.join(d, 'config.json');
    writeFileSync(c, readFileSync(c, 'utf8').replace('"xlm-roberta"', '"roberta"').replace('XLMRobertaModel', 'RobertaModel'));
  }
  for (const f of tok) cpSync(path.join(REPO, f), path.join(d, path.basename(f)));
  return d;
}

function nativeEncode(model) {
  writeFileSync(path.join(work, 'texts.txt'), texts.join('\n') + '\n');
  const out = execFileSync(NATIVE, ['encode', '--model', model, '--in', path.join(work, 'texts.txt'), '-q'], { encoding: 'utf8' });
  return out.trim().split('\n').map((l) => { const r = JSON.parse(l); return r.embedding || Object.values(r).find(Array.isArray); });
}

const CASES = [
  ['xlmr-json', ['tests/fixtures/spm/xlmr/tokenizer.json', 'tests/fixtures/spm/xlmr/sentencepiece.bpe.model'], false, 'tokenizer.json'],
  ['xlmr-model', ['tests/fixtures/spm/xlmr/sentencepiece.bpe.model'], false, 'sentencepiece.bpe.model'],
  ['roberta-bpe', ['tests/fixtures/bpe/vocab.json', 'tests/fixtures/bpe/merges.txt'], true, 'merges.txt'],
];

test('XLM-R (SentencePiece) and RoBERTa (byte-level BPE) folders load in the page and embed as native', async () => {
  const { page, requests } = b;
  await page.goto(server.origin + '/');
  await page.waitForSelector('body[data-model="ready"]', { timeout: 60000 });
  for (const [name, tok, roberta, carried] of CASES) {
    const dir = folder(name, tok, roberta);
    await page.setInputFiles('#model-folder', dir);
    await page.waitForFunction((n) => window.__embedtune.state().model === n && document.body.dataset.model === 'ready', name,
      { timeout: 60000 });
    const info = await page.evaluate(() => window.__embedtune.state().info);
    assert.equal(info.vocabSize, 3010, `${name}: vocabulary rows`);
    assert.equal(info.maxLength, 32, `${name}: 34 positions minus the offset 2`);
    const web = await page.evaluate((t) => window.__embedtune.encode(t), texts);
    const nat = nativeEncode(dir);
    let worst = 0;
    for (let i = 0; i < texts.length; i++)
      for (let j = 0; j < info.dim; j++) worst = Math.max(worst, Math.abs(web[i * info.dim + j] - nat[i][j]));
    console.log(`# ${name}: page vs native encode max |diff| ${worst.toExponential(2)}`);
    assert.ok(worst <= 1e-5, `${name}: page vs native ${worst}`);
    const zip = await page.evaluate(() => window.__embedtune.zip());
    const names = Buffer.from(zip).toString('latin1');
    assert.ok(names.includes(carried), `${name}: the zip carries ${carried}`);
    assert.ok(!names.includes('vocab.txt'), `${name}: no vocab.txt in the zip`);
  }
  // a folder with no tokenizer at all is refused with the files it may have
  const bare = folder('bare', []);
  await page.setInputFiles('#model-folder', bare);
  await page.waitForFunction(() => /Could not load/.test(document.getElementById('model-status').textContent), null, { timeout: 30000 });
  assert.match(await page.textContent('#model-status'), /tokenizer\.json/);
  assert.deepEqual(foreign(requests, server.origin), [], 'no request left the origin');
});
