// check.mjs - checks a running embedtune service (the Worker under workerd, or edge/deno.mjs) against the native CLI:
//   node edge/check.mjs BASE_URL NATIVE_EMBEDTUNE MODEL_DIR INDEX_FILE [THREADS]
// /embed equals `embedtune encode` within 1e-5 (JSON and the binary form), /search equals `embedtune search --index`
// (same ids, scores within 1e-5) in the three modes, and every bad request gets its 4xx JSON error while the service
// keeps answering; /health reports THREADS threads (default 1). Exit status 1 on any failure.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

const [base, native, modelDir, indexFile, threadsArg] = process.argv.slice(2);
if (!indexFile) { console.error('usage: node edge/check.mjs BASE_URL NATIVE_EMBEDTUNE MODEL_DIR INDEX_FILE [THREADS]'); process.exit(2); }
const threads = Number(threadsArg || 1);
let fails = 0, passes = 0;
const ok = (c, name, detail = '') => { if (c) { passes++; console.log(`ok   ${name}`); } else { fails++; console.log(`FAIL ${name} ${detail}`); } };
const tmp = mkdtempSync(path.join(tmpdir(), 'et-edge-'));

async function post(p, body, headers = {}) {
  const r = await fetch(base + p, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: typeof body === 'string' ? body : JSON.stringify(body) });
  return r;
}
async function postJson(p, body) { const r = await post(p, body); return { status: r.status, ct: r.headers.get('content-type') || '', body: await r.json().catch(() => null) }; }

const texts = ['hello world', 'A text editor for the terminal, with syntax highlighting.', 'café crème and naïve façades',
  'Manage virtual machines', '', 'x'.repeat(3000)];
try {
  // health
  const h = await (await fetch(base + '/health')).json();
  ok(h.ok === true && h.model.dim > 0 && h.model.threads === threads, `/health (${threads} thread${threads > 1 ? 's' : ''})`, JSON.stringify(h).slice(0, 200));
  ok(h.index && h.index.docs > 0, '/health reports the index');

  // /embed vs the native CLI
  writeFileSync(path.join(tmp, 'in.txt'), texts.join('\n') + '\n');
  const ref = execFileSync(native, ['encode', '--model', modelDir, '--in', path.join(tmp, 'in.txt'), '-q'], { encoding: 'utf8' })
    .trim().split('\n').map((l) => JSON.parse(l).embedding);
  const e = await postJson('/embed', { texts });
  ok(e.status === 200 && e.body.embeddings.length === texts.length && e.body.dim === ref[0].length, '/embed JSON shape');
  let maxd = 0;
  for (let i = 0; i < texts.length; i++) for (let j = 0; j < ref[i].length; j++) maxd = Math.max(maxd, Math.abs(ref[i][j] - e.body.embeddings[i][j]));
  ok(maxd <= 1e-5, `/embed == native encode (max |diff| ${maxd.toExponential(2)} <= 1e-5)`);
  const rb = await post('/embed', { texts }, { accept: 'application/octet-stream' });
  const bin = new Float32Array(await rb.arrayBuffer());
  ok(rb.status === 200 && rb.headers.get('x-embedding-count') === String(texts.length) && rb.headers.get('x-embedding-dim') === String(ref[0].length),
    '/embed binary headers');
  let same = bin.length === texts.length * ref[0].length;
  for (let i = 0; same && i < texts.length; i++) for (let j = 0; j < ref[0].length; j++) if (bin[i * ref[0].length + j] !== Math.fround(e.body.embeddings[i][j])) same = false;
  ok(same, '/embed binary == JSON values (float32)');
  const one = await postJson('/embed', { text: 'hello world' });
  ok(one.status === 200 && one.body.embeddings.length === 1 && one.body.embeddings[0][0] === e.body.embeddings[0][0], '/embed {"text"}');

  // /search vs the native CLI over the same index
  const queries = ['text editor for the terminal', 'python library for http requests', 'virtual machine manager', 'font'];
  writeFileSync(path.join(tmp, 'q.txt'), queries.join('\n') + '\n');
  for (const mode of ['dense', 'bm25', 'hybrid']) {
    const nat = execFileSync(native, ['search', '--model', modelDir, '--index', indexFile, '--queries', path.join(tmp, 'q.txt'), '--mode', mode, '--json', '-k', '10', '-q'],
      { encoding: 'utf8' }).trim().split('\n').map((l) => JSON.parse(l).results);
    const s = await postJson('/search', { queries, k: 10, mode });
    let idsSame = s.status === 200 && s.body.mode === mode, sd = 0;
    for (let q = 0; idsSame && q < queries.length; q++) {
      if (s.body.results[q].length !== nat[q].length) { idsSame = false; break; }
      for (let j = 0; j < nat[q].length; j++) {
        if (s.body.results[q][j].id !== nat[q][j].id) idsSame = false;
        sd = Math.max(sd, Math.abs(s.body.results[q][j].score - nat[q][j].score));
      }
    }
    ok(idsSame && sd <= 1e-5, `/search ${mode} == native search --index (ids, max score diff ${sd.toExponential(2)})`);
  }
  const s1 = await postJson('/search', { query: 'font', k: 3 });
  ok(s1.status === 200 && s1.body.results.length === 3 && typeof s1.body.results[0].text === 'string', '/search {"query"} with texts');

  // errors: 4xx JSON, and the service keeps answering
  const bad = [
    ['bad JSON', '/embed', '{"texts": [', 400, /not valid UTF-8 JSON/],
    ['not an object', '/embed', '[1,2]', 400, /JSON object/],
    ['missing texts', '/embed', {}, 400, /missing field "texts"/],
    ['texts not an array', '/embed', { texts: 'x' }, 400, /array of strings/],
    ['empty texts', '/embed', { texts: [] }, 400, /empty/],
    ['a text not a string', '/embed', { texts: ['a', 3] }, 400, /texts\[1\] is not a string/],
    ['too many texts', '/embed', { texts: Array(65).fill('a') }, 413, /exceed the limit of 64/],
    ['text too long', '/embed', { texts: ['a'.repeat(17000)] }, 413, /exceeds 16384 bytes/],
    ['body too large', '/embed', JSON.stringify({ texts: ['a'], pad: 'b'.repeat(300000) }), 413, /exceeds 262144/],
    ['bad k', '/search', { query: 'a', k: 0 }, 400, /"k" must be an integer/],
    ['bad mode', '/search', { query: 'a', mode: 'magic' }, 400, /"mode" must be/],
    ['bad fusion', '/search', { query: 'a', fusion: 'bogus' }, 400, /unknown kind 'bogus'/],
    ['too many queries', '/search', { queries: Array(33).fill('a') }, 413, /limit of 32/],
  ];
  for (const [name, p, body, status, re] of bad) {
    const r = await postJson(p, body);
    ok(r.status === status && r.ct.startsWith('application/json') && r.body && re.test(r.body.error), `error: ${name} -> ${status}`, JSON.stringify(r));
  }
  const utf = await fetch(base + '/embed', { method: 'POST', headers: { 'content-type': 'application/json' }, body: new Uint8Array([0x7b, 0xff, 0x7d]) });
  ok(utf.status === 400, 'error: invalid UTF-8 -> 400');
  const ct = await fetch(base + '/embed', { method: 'POST', headers: { 'content-type': 'text/plain' }, body: '{}' });
  ok(ct.status === 415 && /Content-Type/.test((await ct.json()).error), 'error: wrong content type -> 415');
  const nf = await fetch(base + '/nope');
  ok(nf.status === 404 && (await nf.json()).error, 'error: unknown path -> 404');
  const mm = await fetch(base + '/embed');
  ok(mm.status === 405 && (await mm.json()).error, 'error: GET /embed -> 405');
  const h2 = await (await fetch(base + '/health')).json();
  ok(h2.ok === true, 'still healthy after the bad requests');
  const again = await postJson('/embed', { texts });
  ok(again.status === 200 && again.body.embeddings[1][5] === e.body.embeddings[1][5], 'same embeddings after the bad requests');
} catch (err) {
  fails++;
  console.log(`FAIL exception: ${err.stack || err}`);
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
console.log(`edge check (${base}): ${passes} passed, ${fails} failed`);
process.exit(fails ? 1 : 0);
