// wasi_cli.test.mjs - the WASI build of the CLI (build-wasi/embedtune.wasm) under node:wasi:
// `embedtune encode` on tests/fixtures/e2e/model must give the PyTorch reference (<= 1e-4) and the
// native CLI's embeddings (<= 1e-5; native binary from $ET_NATIVE_EMBEDTUNE or build/embedtune, skipped
// if none). ET_WASI_BUILD (default build-wasi) names the WASI build dir.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const wasm = path.resolve(root, process.env.ET_WASI_BUILD || 'build-wasi', 'embedtune.wasm');
const native = process.env.ET_NATIVE_EMBEDTUNE || path.join(root, 'build/embedtune');

const expected = readFileSync(path.join(root, 'tests/fixtures/e2e/expected.txt'), 'utf8').trim().split('\n').map((l) => {
  const f = l.split(' ');
  const n = +f[1];
  return { text: f[0] === '-' ? '' : Buffer.from(f[0], 'hex').toString('utf8'), emb: f.slice(2 + n).map(Number) };
});

function readNpy(file) { // float32 little-endian, C order
  const b = readFileSync(file);
  assert.equal(b.subarray(1, 6).toString('latin1'), 'NUMPY', `${file}: not a .npy file`);
  const hl = b.readUInt16LE(8), hdr = b.subarray(10, 10 + hl).toString('latin1');
  assert.match(hdr, /'descr': '<f4'/);
  const shape = hdr.match(/'shape': \((\d+), (\d+)\)/).slice(1).map(Number);
  const data = new Float32Array(b.buffer.slice(b.byteOffset + 10 + hl, b.byteOffset + b.length));
  return { shape, data };
}

function run(cmd, args) {
  const r = spawnSync(cmd[0], [...cmd.slice(1), ...args], { cwd: root, encoding: 'utf8', timeout: 60000 });
  assert.equal(r.status, 0, `${cmd.join(' ')} ${args.join(' ')} failed (${r.status} ${r.signal}): ${r.stderr}`);
  return r;
}

test('WASI embedtune encode equals PyTorch and the native CLI', { skip: !existsSync(wasm) && `${wasm} not built` }, () => {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'et_wasi_cli_'));
  try {
    const inp = path.join(tmp, 'texts.jsonl');
    writeFileSync(inp, expected.map((e) => JSON.stringify({ text: e.text })).join('\n') + '\n');
    const wasiRun = ['node', '--no-warnings', '--single-threaded', path.join(root, 'cmake/run-wasi.mjs'), wasm];
    const v = run(wasiRun, ['version']);
    assert.match(v.stdout, /embedtune .*wasm128/);
    run(wasiRun, ['encode', '--model', 'tests/fixtures/e2e/model', '--in', inp, '--out', path.join(tmp, 'wasi.npy'), '--batch', '5', '-q']);
    const w = readNpy(path.join(tmp, 'wasi.npy'));
    assert.deepEqual(w.shape, [expected.length, 32]);
    let worst = 0;
    expected.forEach((e, i) => e.emb.forEach((x, j) => { worst = Math.max(worst, Math.abs(w.data[i * 32 + j] - x)); }));
    assert.ok(worst <= 1e-4, `WASI vs PyTorch ${worst}`);
    if (existsSync(native)) {
      run([native], ['encode', '--model', 'tests/fixtures/e2e/model', '--in', inp, '--out', path.join(tmp, 'native.npy'), '--batch', '5', '-q']);
      const n = readNpy(path.join(tmp, 'native.npy'));
      let d = 0;
      for (let i = 0; i < n.data.length; i++) d = Math.max(d, Math.abs(n.data[i] - w.data[i]));
      console.log(`WASI vs native max abs diff ${d}, vs PyTorch ${worst}`);
      assert.ok(d <= 1e-5, `WASI vs native ${d}`);
    } else {
      console.log(`native CLI not found at ${native}: compared with PyTorch only (${worst})`);
    }
  } finally { rmSync(tmp, { recursive: true, force: true }); }
});

test('the WASI CLI is a standalone preview-1 command module (no Emscripten glue)', { skip: !existsSync(wasm) && `${wasm} not built` }, () => {
  const mod = new WebAssembly.Module(readFileSync(wasm));
  const imports = WebAssembly.Module.imports(mod);
  assert.ok(imports.length > 0);
  for (const i of imports) assert.equal(i.module, 'wasi_snapshot_preview1', `import ${i.module}.${i.name} is not WASI preview 1`);
  const exports = WebAssembly.Module.exports(mod).map((e) => e.name);
  assert.ok(exports.includes('_start') && exports.includes('memory'), `exports: ${exports.join(', ')}`);
});

test('WASI embedtune index / search --index: the index of either build is read by the other with the same results',
  { skip: (!existsSync(wasm) && `${wasm} not built`) || (!existsSync(native) && 'no native embedtune') }, () => {
    const tmp = mkdtempSync(path.join(os.tmpdir(), 'et_wasi_index_'));
    try {
      const wasiRun = ['node', '--no-warnings', '--single-threaded', path.join(root, 'cmake/run-wasi.mjs'), wasm];
      const model = 'tests/fixtures/e2e/model', corpus = 'tests/fixtures/eval/beir/corpus.jsonl';
      run(wasiRun, ['index', '--model', model, '--corpus', corpus, '--out', path.join(tmp, 'w.etix'), '--dtype', 'f16', '-q']);
      run([native], ['index', '--model', model, '--corpus', corpus, '--out', path.join(tmp, 'n.etix'), '--dtype', 'f16', '-q']);
      const q = ['what is bm25', 'neural ranking'];
      writeFileSync(path.join(tmp, 'q.txt'), q.join('\n') + '\n');
      for (const mode of ['bm25', 'dense', 'hybrid']) {
        const args = (ix) => ['search', '--model', model, '--index', path.join(tmp, ix), '--queries', path.join(tmp, 'q.txt'), '--mode', mode, '--json', '-k', '5', '-q'];
        const parse = (r) => r.stdout.trim().split('\n').map((l) => JSON.parse(l).results);
        const a = parse(run(wasiRun, args('n.etix'))), b = parse(run([native], args('w.etix'))), c = parse(run([native], args('n.etix')));
        for (const other of [a, b]) {
          assert.deepEqual(other.map((r) => r.map((h) => h.id)), c.map((r) => r.map((h) => h.id)), `${mode}: ids differ`);
          other.forEach((r, i) => r.forEach((h, j) => assert.ok(Math.abs(h.score - c[i][j].score) <= 1e-5, `${mode}: score ${h.score} vs ${c[i][j].score}`)));
        }
      }
    } finally { rmSync(tmp, { recursive: true, force: true }); }
  });
