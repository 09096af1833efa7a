// api.test.mjs - the embedtune ES module (wasm/embedtune.mjs, Emscripten build) under node's test runner:
//   ET_WASM_BUILD=build-wasm node --test tests/wasm/      (tools/test_wasm.sh runs it)
// Reference: tests/fixtures/e2e (PyTorch float64 embeddings of 14 texts, tools/gen_e2e_fixture.py).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const build = path.resolve(root, process.env.ET_WASM_BUILD || 'build-wasm');
const modPath = path.join(build, 'embedtune.mjs');
if (!existsSync(modPath)) throw new Error(`${modPath} not found: build it (tools/test_wasm.sh)`);
const { Embedtune, EmbedtuneWorker, shutdown, filesFromFolder } = await import(modPath);

const dir = path.join(root, 'tests/fixtures/e2e/model');
const rd = (f) => readFileSync(path.join(dir, f));
const files = () => ({
  config: rd('config.json'), vocab: rd('vocab.txt'), safetensors: rd('model.safetensors'), modules: rd('modules.json'),
  pooling: rd('1_Pooling/config.json'), sbertConfig: rd('sentence_bert_config.json'),
});

// expected.txt: hex(text) n_ids ids... embedding...
const expected = readFileSync(path.join(root, 'tests/fixtures/e2e/expected.txt'), 'utf8').trim().split('\n').map((l) => {
  const f = l.split(' ');
  const text = f[0] === '-' ? '' : Buffer.from(f[0], 'hex').toString('utf8');
  const n = +f[1];
  return { text, emb: Float32Array.from(f.slice(2 + n).map(Number)) };
});
const texts = expected.map((e) => e.text);

function maxDiff(a, b) { let m = 0; for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i])); return m; }

after(async () => { await shutdown(); });

for (const threads of [1, 2]) {
  test(`encode matches PyTorch (threads ${threads})`, async () => {
    const m = await Embedtune.load(files(), { threads });
    assert.equal(m.info.threads, threads);
    assert.equal(m.dim, 32);
    assert.equal(m.maxLength, 24);
    const d = m.dim;
    const out = m.encode(texts, { batch: 5 });
    assert.equal(out.length, texts.length * d);
    let worst = 0;
    expected.forEach((e, i) => { worst = Math.max(worst, maxDiff(out.subarray(i * d, i * d + d), e.emb)); });
    assert.ok(worst <= 1e-4, `max abs error vs PyTorch ${worst}`);
    m.dispose();
  });
}

test('int8 encode (SIMD128 i32x4.dot_i16x8_s): cosine >= 0.995 to fp32, per call', async () => {
  const cdir = path.join(root, 'models/compact'), rc = (f) => readFileSync(path.join(cdir, f));
  const m = await Embedtune.load({ config: rc('config.json'), vocab: rc('vocab.txt'), safetensors: rc('model.safetensors'),
    modules: rc('modules.json'), pooling: rc('1_Pooling/config.json'), sbertConfig: rc('sentence_bert_config.json') }, { threads: 2 });
  assert.equal(m.info.int8, false);
  const t = ['how do I list open files', 'kernel panic after upgrade', 'the quick brown fox jumps over the lazy dog'];
  const f = m.encode(t), q = m.encode(t, { int8: true }), f2 = m.encode(t), d = m.dim;
  assert.deepEqual(f2, f, 'the int8 option is per call');
  assert.notDeepEqual(q, f);
  for (let i = 0; i < t.length; i++) {
    let dot = 0, na = 0, nb = 0;
    for (let j = 0; j < d; j++) { const a = f[i * d + j], b = q[i * d + j]; dot += a * b; na += a * a; nb += b * b; }
    assert.ok(dot / Math.sqrt(na * nb) >= 0.995, `text ${i}: cosine ${dot / Math.sqrt(na * nb)}`);
  }
  m.dispose();
});

test('search modes (C hybrid engine) and the BM25 match spans as string indices', async () => {
  const m = await Embedtune.load(files(), { threads: 2 });
  const docs = ['the cat sat on the mat', 'dogs chase cats', 'café ☕ crème brûlée and cat food', 'nothing here'];
  m.setCorpus(docs);
  assert.deepEqual(m.info.retrieval, { mode: 'dense', fusion: 'convex minmax, model weight 0.20', source: 'default' });
  const bm = m.search('cat', 4, 'bm25');
  assert.deepEqual(bm.slice(0, 2).map((h) => h.index).sort(), [0, 2], 'BM25: the docs with the token "cat"');
  assert.ok(bm[0].score > 0 && bm[2].score === 0);
  const hy = m.search('cat', 4, 'hybrid'), de = m.search('cat', 4, 'dense');
  assert.equal(hy.length, 4);
  assert.deepEqual(de.map((h) => h.index).sort(), [0, 1, 2, 3]);
  assert.throws(() => m.search('cat', 4, 'fuzzy'), /mode must be dense, bm25 or hybrid/);
  // a retrieval.json fusion is used by hybrid: alpha 1 = the model's order, alpha 0 = BM25's
  for (const [alpha, ref] of [[1, de], [0, bm]]) {
    const m2 = await Embedtune.load({ ...files(), retrieval: JSON.stringify({ format: 'embedtune-retrieval', version: 1, mode: 'hybrid', bm25: { k1: 0.9, b: 0.4 }, fusion: { kind: 'convex', norm: 'minmax', alpha, depth: 100 } }) }, { threads: 1 });
    assert.equal(m2.info.retrieval.source, 'retrieval.json');
    m2.setCorpus(docs);
    assert.deepEqual(m2.search('cat', 2, 'hybrid').map((h) => h.index), ref.slice(0, 2).map((h) => h.index), `alpha ${alpha}`);
    assert.ok(new TextDecoder().decode(m2.exportFiles()['retrieval.json']).includes('"alpha"'), 'export keeps retrieval.json');
    m2.dispose();
  }
  await assert.rejects(Embedtune.load({ ...files(), retrieval: '{"format": "embedtune-retrieval", "version": 1, "mode": "hybrid", "bm25": {"k1": 0.9, "b": 0.4}, "fusion": {"kind": "convex", "norm": "minmax", "alpha": 7, "depth": 100}}' }), /retrieval\.json.*alpha/);
  // spans: BM25's token rule (ASCII alnum runs, case-folded); indices are UTF-16 positions in the string
  const t = 'Café ☕ CAT-food, cats & 𝒳 cat';
  const sp = m.matchTerms('cat café', [t, '', 'no match'])[0];
  assert.deepEqual(sp.map(([a, b]) => t.slice(a, b)), ['Caf', 'CAT', 'cat'], 'café tokenizes to "caf" (the é is a separator)');
  assert.deepEqual(m.matchTerms('x', ['', 'x']), [[], [[0, 1]]]);
  m.dispose();
});

test('search returns the right top hit', async () => {
  const m = await Embedtune.load(files(), { threads: 2 });
  // a cancel at the BM25 step (after the encoding) fails with the cancel code and leaves no index
  assert.throws(() => m.setCorpus(texts, { onProgress: (d, t, step) => step === 'BM25 index' }), (e) => e.code === 8 && /bm25: cancelled/.test(e.message));
  assert.throws(() => m.search('x', 1, 'bm25'), /setCorpus/);
  const n = m.setCorpus(texts);
  assert.equal(n, texts.length);
  for (const i of [0, 3, 7]) {
    if (!texts[i]) continue;
    const hits = m.search(texts[i], 3);
    assert.equal(hits.length, 3);
    assert.equal(hits[0].index, i, `query "${texts[i]}" top hit ${hits[0].index}`);
    assert.ok(Math.abs(hits[0].score - 1) < 1e-4, `self-similarity ${hits[0].score}`);
    assert.ok(hits[0].score >= hits[1].score && hits[1].score >= hits[2].score);
    assert.equal(hits[0].text, texts[i]);
  }
  // embeddings as the corpus, k larger than the corpus
  m.setCorpus(m.encode(texts.slice(0, 2)));
  const hits = m.search(m.encode([texts[1]]), 10);
  assert.equal(hits.length, 2);
  assert.equal(hits[0].index, 1);
  m.dispose();
});

test('export -> re-load gives identical embeddings (f32), close ones (f16)', async () => {
  const m = await Embedtune.load(files(), { threads: 1 });
  const a = m.encode(texts);
  const out = m.exportFiles();
  for (const f of ['config.json', 'vocab.txt', 'model.safetensors', 'modules.json', '1_Pooling/config.json'])
    assert.ok(out[f] && out[f].length > 0, `export has ${f}`);
  const m2 = await Embedtune.load(filesFromFolder(out), { threads: 1 });
  assert.deepEqual(m2.info, m.info);
  const b = m2.encode(texts);
  assert.equal(maxDiff(a, b), 0, 'f32 round trip must be exact');
  const m3 = await Embedtune.load(filesFromFolder(m.exportFiles({ dtype: 'f16' })), { threads: 1 });
  // the fixture's weights are F16 already, so even F16 export is exact
  assert.ok(maxDiff(a, m3.encode(texts)) <= 1e-3);
  m.dispose(); m2.dispose(); m3.dispose();
});

test('bad inputs reject with errors naming the file and field', async () => {
  const f = files();
  const trunc = { ...f, safetensors: f.safetensors.subarray(0, f.safetensors.length - 100) };
  await assert.rejects(Embedtune.load(trunc), (e) => /model\.safetensors/.test(e.message) && e instanceof Error);
  const cfg = JSON.parse(f.config.toString());
  delete cfg.hidden_size;
  await assert.rejects(Embedtune.load({ ...f, config: JSON.stringify(cfg) }), (e) => /config\.json/.test(e.message) && /hidden_size/.test(e.message));
  await assert.rejects(Embedtune.load({ ...f, config: '{"model_type": "bert",' }), /config\.json/);
  await assert.rejects(Embedtune.load({ ...f, vocab: 'a\nb\n' }), /vocab/);
  await assert.rejects(Embedtune.load({ ...f, safetensors: undefined }), /model\.safetensors/);
  const m = await Embedtune.load(f, { threads: 1 });
  assert.throws(() => m.search('x', 1), /corpus/);
  assert.throws(() => m.encode('not an array'), TypeError);
  assert.throws(() => m.exportFiles({ dtype: 'f8' }), /dtype/);
  m.dispose();
  assert.throws(() => m.encode(['x']), /disposed/);
});

test('a batch whose activations exceed the wasm memory budget is refused before allocating', async () => {
  const m = await Embedtune.load(files(), { threads: 1 });
  const many = new Array(200000).fill('a');
  assert.throws(() => m.encode(many, { batch: 200000, maxLength: 64 }), (e) => /memory budget/.test(e.message));
  // the model still works afterwards
  assert.equal(m.encode(['hello']).length, m.dim);
  m.dispose();
});

test('progress callback and cancel', async () => {
  const m = await Embedtune.load(files(), { threads: 2 });
  const seen = [];
  m.encode(texts, { batch: 4, onProgress: (done, total) => { seen.push([done, total]); return false; } });
  assert.ok(seen.length >= 3 && seen.at(-1)[0] === texts.length && seen.at(-1)[1] === texts.length, JSON.stringify(seen));
  assert.throws(() => m.encode(texts, { batch: 4, onProgress: () => true }), (e) => e.code === 8); // ET_ERR_CANCELLED
  m.dispose();
});

test('worker: same results off-thread', async () => {
  const w = await EmbedtuneWorker.load(files(), { threads: 2 });
  assert.equal(w.dim, 32);
  const ticks = [];
  const out = await w.encode(texts, { batch: 5, onProgress: (d, t) => ticks.push(d) });
  const d = w.dim;
  let worst = 0;
  expected.forEach((e, i) => { worst = Math.max(worst, maxDiff(out.subarray(i * d, i * d + d), e.emb)); });
  assert.ok(worst <= 1e-4, `worker max abs error ${worst}`);
  assert.ok(ticks.length > 0);
  // the search index reports its two steps through the worker: the encoding (texts), then BM25 (docs)
  const steps = [];
  await w.setCorpus(texts, { batch: 5, onProgress: (done, total, step) => { steps.push([step, done, total]); } });
  const enc = steps.filter((s) => s[0] === 'encode'), bm = steps.filter((s) => s[0] === 'BM25 index');
  assert.ok(enc.length > 0 && enc.at(-1)[1] === texts.length && enc.at(-1)[2] === texts.length, `encode steps ${JSON.stringify(enc)}`);
  assert.deepEqual([bm[0], bm.at(-1)], [['BM25 index', 0, texts.length], ['BM25 index', texts.length, texts.length]], JSON.stringify(bm));
  assert.ok(steps.indexOf(enc.at(-1)) < steps.indexOf(bm[0]), 'BM25 after the encoding');
  const hits = await w.search(texts[3], 1);
  assert.equal(hits[0].index, 3);
  await assert.rejects(w.search('x', 0).then(() => w.encode('bad')), /texts must be an array/);
  await w.terminate();
});

// the held-out split through the C export (et_wasm_split = et_split_row_is_test, docs/data-formats.md): the key is the
// id, else the query text; references from Python's hashlib: "995" test, "1" train, "what is bm25" test,
// "café ☕ how do I order" train, "q10" test
test('held-out split: the C rule through wasm', async () => {
  const m = await Embedtune.load(files(), { threads: 1 });
  const M = m.M;
  const rows = [['995', 'x'], ['1', 'what is bm25'], ['', 'what is bm25'], ['', 'café ☕ how do I order'], ['q10', 'café ☕ how do I order']];
  const blob = (strs) => {
    const parts = strs.map((t) => new TextEncoder().encode(t));
    const b = new Uint8Array(parts.reduce((s, p) => s + p.length + 1, 0));
    let off = 0;
    for (const p of parts) { b.set(p, off); off += p.length + 1; }
    return b;
  };
  const [ip, il] = m.copyIn(blob(rows.map((r) => r[0])));
  const [qp, ql] = m.copyIn(blob(rows.map((r) => r[1])));
  const op = M._malloc(rows.length);
  try {
    assert.equal(M._et_wasm_split(ip, il, qp, ql, rows.length, op, m.err), 0);
    assert.deepEqual([...m.heap8().subarray(op, op + rows.length)], [1, 0, 1, 0, 1]);
    assert.notEqual(M._et_wasm_split(ip, il, qp, ql, rows.length + 1, op, m.err), 0, 'a missing string is an error');
  } finally {
    M._free(ip); M._free(qp); M._free(op);
    m.dispose();
  }
});

test('LoRA adapters: load(files, {adapters}) merges a PEFT folder (the C loader, as encode --adapter); a misfit is refused by name', async () => {
  const ad = path.join(root, 'tests/fixtures/lora/adapter'), ra = (f) => readFileSync(path.join(ad, f));
  const adapter = { 'adapter_config.json': ra('adapter_config.json'), 'adapter_model.safetensors': ra('adapter_model.safetensors') };
  const base = await Embedtune.load(files(), { threads: 1 });
  const m = await Embedtune.load(files(), { threads: 1, adapters: [adapter] });
  assert.deepEqual(base.info.adapters, []);
  assert.equal(m.info.adapters.length, 1);
  assert.deepEqual([m.info.adapters[0].r, m.info.adapters[0].alpha], [4, 8]);
  const e0 = base.encode(texts.slice(0, 4)), e1 = m.encode(texts.slice(0, 4));
  assert.ok(maxDiff(e0, e1) > 0.01, 'the adapter changes the embeddings');
  // the merged model exported and loaded plain encodes the same (the adapter is in the weights)
  const x = m.exportFiles();
  const m2 = await Embedtune.load(filesFromFolder(x), { threads: 1 });
  assert.equal(maxDiff(m2.encode(texts.slice(0, 4)), e1), 0);
  // the fixture's adapter (hidden 32) on models/compact (hidden 128): refused, the message names the layer, no MEMFS path
  const cdir = path.join(root, 'models/compact'), rc = (f) => readFileSync(path.join(cdir, f));
  await assert.rejects(Embedtune.load({ config: rc('config.json'), vocab: rc('vocab.txt'), safetensors: rc('model.safetensors') }, { threads: 1, adapters: [adapter] }),
    (e) => /^adapter: encoder\.layer\.0\.attention\.self\.query is \[32 x 32\] \(B A\), the model's weight is \[128 x 128\]/.test(e.message) && !e.message.includes('/et_adapter_'));
  await assert.rejects(Embedtune.load(files(), { threads: 1, adapters: [{ 'adapter_config.json': adapter['adapter_config.json'] }] }), /adapter_model\.safetensors: missing/);
  for (const o of [base, m, m2]) o.dispose();
});
