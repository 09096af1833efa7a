// worker_ops.test.mjs - the worker's operations live in one table, WORKER_OPS (wasm/embedtune.mjs): the worker's
// dispatch (workerHandle, what wasm/worker.mjs runs) and EmbedtuneWorker's methods are made from it. Fails when an
// operation is called, declared or dispatched outside the table, and checks each row end to end (client method ->
// message -> worker -> the Embedtune method with the same arguments -> result and progress back) on a stand-in model,
// through structuredClone as postMessage copies (so nothing that cannot cross a thread, such as a callback, is sent).
// Needs no wasm build: node --test tests/wasm/worker_ops.test.mjs (tools/test_wasm.sh runs it with the others).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Embedtune, EmbedtuneWorker, WORKER_OPS, workerHandle } from '../../wasm/embedtune.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const src = (f) => readFileSync(path.join(root, f), 'utf8');
const ops = Object.keys(WORKER_OPS);
const clientOps = ops.filter((op) => WORKER_OPS[op].client !== false);

test('every operation the client sends is a row of WORKER_OPS', () => {
  const called = [...src('wasm/embedtune.mjs').matchAll(/_call\(\s*'(\w+)'/g)].map((m) => m[1]);
  assert.ok(called.includes('load') && called.includes('init'), `the client's own calls were found: ${called}`);
  for (const op of called) assert.ok(ops.includes(op), `EmbedtuneWorker calls '${op}', which WORKER_OPS lacks`);
});

test('the worker has no list of its own: it runs workerHandle, naming no operation', () => {
  const w = src('wasm/worker.mjs').replace(/^\s*\/\/.*$/gm, '');
  assert.match(w, /workerHandle\(/);
  for (const op of ops) assert.ok(!new RegExp(`['"\`]${op}['"\`]`).test(w), `wasm/worker.mjs names the operation '${op}'`);
  assert.ok(!/switch\s*\(/.test(w), 'wasm/worker.mjs dispatches by a switch of its own');
});

test('embedtune.d.ts declares exactly the client rows as EmbedtuneWorker methods', () => {
  const dts = src('wasm/embedtune.d.ts');
  const body = dts.slice(dts.indexOf('export class EmbedtuneWorker {'));
  const cls = body.slice(0, body.indexOf('\n}'));
  const declared = [...cls.matchAll(/^ {2}(\w+)\(/gm)].map((m) => m[1]).filter((n) => n !== 'cancel' && n !== 'terminate');
  assert.deepEqual([...declared].sort(), [...clientOps].sort());
});

test('each row: a method on EmbedtuneWorker, an Embedtune method (or its own run) in the worker', () => {
  for (const [op, d] of Object.entries(WORKER_OPS)) {
    assert.ok(Array.isArray(d.args), `${op}: args`);
    assert.ok([undefined, 'count', 'stats', 'step'].includes(d.progress), `${op}: progress ${d.progress}`);
    if (d.progress) assert.ok(d.args.length > 0, `${op}: progress needs a last parameter`);
    if (d.run) assert.equal(typeof d.run, 'function', op);
    else assert.equal(typeof Embedtune.prototype[op], 'function', `WORKER_OPS.${op}: Embedtune has no method ${op}`);
    if (d.client === false) assert.equal(EmbedtuneWorker.prototype[op], undefined, `${op} is not a client method`);
    else assert.equal(typeof EmbedtuneWorker.prototype[op], 'function', `EmbedtuneWorker.${op}`);
  }
});

/** A client wired to workerHandle through structuredClone; the model records its calls and reports progress. */
function rig({ cancelFlag = null } = {}) {
  const calls = [];
  const model = new Proxy({ info: { dim: 4 } }, {
    get(t, name) {
      if (name in t) return t[name];
      return (...a) => {
        calls.push({ name, a });
        const last = a[a.length - 1];
        let cancelled;
        if (typeof last === 'function') cancelled = last({ step: 1 });
        else if (last && typeof last.onProgress === 'function') cancelled = name === 'setCorpus' ? last.onProgress(1, 2, 'BM25 index') : last.onProgress(1, 2);
        return { op: name, cancelled: cancelled === true, files: {} }; // files: what finetune's transfer reads
      };
    },
  });
  const state = { model, cancelFlag };
  const c = Object.create(EmbedtuneWorker.prototype);
  Object.assign(c, { seq: 0, pending: new Map(), cancelFlag });
  const posted = [];
  c.w = {
    postMessage: (msg) => {
      posted.push(structuredClone(msg));
      return workerHandle(state, structuredClone(msg), (m) => c._onMessage(structuredClone(m)));
    },
  };
  return { c, calls, posted, state };
}

for (const op of clientOps) {
  test(`${op}: the client's arguments reach Embedtune.${op} in order, progress comes back`, async () => {
    const { c, calls, posted } = rig();
    const d = WORKER_OPS[op];
    const progress = [];
    const a = d.args.map((name, i) => ({ arg: name, i }));
    if (d.progress === 'count' || d.progress === 'stats') a[a.length - 1].onProgress = (...p) => { progress.push(p); };
    if (d.progress === 'step') a[a.length - 1] = (s) => { progress.push([s]); };
    const r = await c[op](...a);
    assert.equal(calls.length, 1);
    assert.equal(calls[0].name, op);
    assert.equal(posted[0].op, op);
    assert.equal(posted[0].progress, !!d.progress);
    assert.equal(r.op, op);
    const got = calls[0].a;
    assert.equal(got.length, d.args.length);
    d.args.forEach((name, i) => {
      if (d.progress && i === d.args.length - 1) return;
      assert.deepEqual(got[i], { arg: name, i }, `${op}: argument ${i} (${name})`);
    });
    if (d.progress === 'count' || d.progress === 'stats') {
      const { onProgress, ...rest } = got[got.length - 1];
      assert.deepEqual(rest, { arg: d.args[d.args.length - 1], i: d.args.length - 1 }, `${op}: options other than onProgress`);
      assert.equal(typeof onProgress, 'function');
      assert.deepEqual(progress, [d.progress === 'count' ? (op === 'setCorpus' ? [1, 2, 'BM25 index'] : [1, 2]) : [1]], `${op}: progress (setCorpus names its step)`);
      assert.equal(r.cancelled, false);
    }
    if (d.progress === 'step') assert.deepEqual(progress, [[{ step: 1 }]]);
  });
}

test('a progress operation without a callback still runs, sends no progress, and can be cancelled', async () => {
  const flag = new Int32Array(new SharedArrayBuffer(4));
  const { c } = rig({ cancelFlag: flag });
  assert.equal((await c.encode(['a'])).cancelled, false);
  assert.equal((await c.finetune('x', 'd.jsonl')).cancelled, false);
  assert.equal(c.cancel(), true); // every call made so far (id <= 2) and the next one checks the flag...
  Atomics.store(flag, 0, 3);
  assert.equal((await c.encode(['a'])).cancelled, true);
  assert.equal((await c.setCorpus(['a'], {})).cancelled, false); // id 4: not cancelled
});

test('the worker refuses an unknown operation and a model operation before load', async () => {
  const out = [];
  await workerHandle({ model: null, cancelFlag: null }, { id: 1, op: 'nope' }, (m) => out.push(m));
  await workerHandle({ model: null, cancelFlag: null }, { id: 2, op: 'encode', args: { texts: ['a'] } }, (m) => out.push(m));
  await workerHandle({ model: null, cancelFlag: null }, { id: 3, op: 'toString' }, (m) => out.push(m));
  assert.deepEqual(out.map((m) => [m.id, m.error]), [
    [1, "worker: unknown op 'nope'"], [2, 'no model loaded (call load first)'], [3, "worker: unknown op 'toString'"]]);
});

test('init keeps the cancel flag; transfers move the result buffers', async () => {
  const state = { model: null, cancelFlag: null }, out = [];
  const flag = new Int32Array(new SharedArrayBuffer(4));
  await workerHandle(state, { id: 1, op: 'init', args: { flag } }, (m, t) => out.push([m, t]));
  assert.equal(state.cancelFlag, flag);
  assert.deepEqual(out[0][0], { id: 1, result: true });
  const files = { 'a.json': new Uint8Array(3), 'b/c.bin': new Uint8Array(5) };
  state.model = { info: { dim: 8 }, exportFiles: () => files, encode: () => new Float32Array(2), finetune: () => ({ files }),
    trainCheckpoint: () => null };
  out.length = 0;
  for (const [id, op] of [[2, 'exportFiles'], [3, 'encode'], [4, 'finetune'], [5, 'trainCheckpoint']]) {
    await workerHandle(state, { id, op, args: {} }, (m, t) => out.push([m, t]));
  }
  assert.deepEqual(out[0][1], [files['a.json'].buffer, files['b/c.bin'].buffer]);
  assert.equal(out[1][1].length, 1);
  assert.ok(out[1][1][0] instanceof ArrayBuffer);
  assert.deepEqual(out[2][1], [files['a.json'].buffer, files['b/c.bin'].buffer]);
  assert.deepEqual(out[2][0].result.info, { dim: 8 }, 'finetune: the tuned model info comes with the result');
  assert.deepEqual(out[3], [{ id: 5, result: null }, []]);
});
