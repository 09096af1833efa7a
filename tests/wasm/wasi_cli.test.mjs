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
