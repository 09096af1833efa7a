// Security: the server's headers (COOP/COEP/CORP/CSP, content types), no directory traversal, and a
// malicious pairs file (XSS attempts in every field) that must show as literal text and run nothing.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startServer, openBrowser, foreign } from './helpers.mjs';

let server;
before(async () => { server = await startServer(); });
after(async () => { await server.close(); });

/** Raw GET (the path is sent exactly as given: no client-side normalisation). */
function rawGet(port, p) {
  return new Promise((res, rej) => {
    const req = http.request({ host: '127.0.0.1', port, path: p, method: 'GET' }, (r) => {
      const chunks = [];
      r.on('data', (c) => chunks.push(c));
      r.on('end', () => res({ status: r.statusCode, headers: r.headers, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', rej);
    req.end();
  });
}

test('headers: COOP, COEP, CORP, CSP and content types on every response', async () => {
  for (const [p, type] of [['/', 'text/html'], ['/app.mjs', 'text/javascript'], ['/style.css', 'text/css'],
    ['/wasm/embedtune.mjs', 'text/javascript'], ['/wasm/embedtune-core.wasm', 'application/wasm'],
    ['/wasm/embedtune-core.worker.js', 'text/javascript'], ['/models/default.json', 'application/json'], ['/nope', 'text/plain']]) {
    const r = await rawGet(server.port, p);
    assert.equal(r.headers['cross-origin-opener-policy'], 'same-origin', p);
    assert.equal(r.headers['cross-origin-embedder-policy'], 'require-corp', p);
    assert.equal(r.headers['cross-origin-resource-policy'], 'same-origin', p);
    const csp = r.headers['content-security-policy'];
    assert.match(csp, /default-src 'self'/, p);
    assert.match(csp, /script-src 'self' 'wasm-unsafe-eval'(;|$)/, p);
    assert.match(csp, /object-src 'none'/);
    assert.match(csp, /base-uri 'none'/);
    assert.match(csp, /form-action 'none'/);
    assert.doesNotMatch(csp, /unsafe-inline|https?:|\*/, p);
    assert.ok(r.headers['content-type'].startsWith(type), `${p}: ${r.headers['content-type']}`);
  }
  const m = JSON.parse((await rawGet(server.port, '/models/default.json')).body);
  assert.ok(m.files.includes('model.safetensors'));
});

test('no directory traversal, no dotfiles, nothing outside the served files', async () => {
  const bad = ['/../../etc/passwd', '/%2e%2e/%2e%2e/etc/passwd', '/wasm/..%2f..%2fetc%2fpasswd', '/models/../../../etc/passwd',
    '/wasm/%2e%2e/CMakeLists.txt', '/..%5c..%5cetc%5cpasswd', '/models/%2e%2e%2f%2e%2e%2fetc/passwd', '/%00/etc/passwd',
    '/wasm/CMakeCache.txt', '/wasm/libetcore.a', '/.git/config', '/models/.git/config', '/node_modules/playwright-core/package.json',
    '/tests/helpers.mjs', '/server.mjs', '/wasm/../web/server.mjs', '//etc/passwd', '/models/glove-bert-starter/../../README.md', '/%ZZ'];
  for (const p of bad) {
    const r = await rawGet(server.port, p);
    assert.ok([400, 403, 404].includes(r.status), `${p}: HTTP ${r.status}`);
    assert.doesNotMatch(r.body, /root:|\[core\]|cmake_minimum|"name": "playwright/, p);
  }
});

test('a malicious pairs file shows literally and runs nothing', async () => {
  const b = await openBrowser(server.origin);
  const dir = mkdtempSync(path.join(tmpdir(), 'et-xss-'));
  try {
    const { page, requests } = b;
    const violations = [];
    await page.exposeFunction('__cspViolation', (v) => violations.push(v));
    await page.addInitScript(() => document.addEventListener('securitypolicyviolation', (e) => window.__cspViolation(`${e.violatedDirective} ${e.blockedURI}`)));
    const P = [
      '<img src=x onerror="window.__pwned=1">',
      '<script>window.__pwned=2</script>',
      'javascript:window.__pwned=3',
      '<a href="javascript:window.__pwned=4">click</a>',
      '"><svg onload=window.__pwned=5>',
      '<iframe srcdoc="<script>parent.__pwned=6</script>"></iframe>',
    ];
    const lines = P.map((x, i) => JSON.stringify({ query: `${x} q${i}`, positive: `${x} p${i}`, id: x, negatives: [x] }));
    lines.push('{"query": "<img src=x onerror=window.__pwned=7>", "positive": 5}');            // a bad line: error message
    lines.push('<script>window.__pwned=8</script>');                                          // not JSON
    const f = path.join(dir, '<img src=x onerror=window.__pwned=9>.jsonl');
    writeFileSync(f, lines.join('\n') + '\n');
    await page.goto(server.origin + '/');
    await page.waitForSelector('body[data-model="ready"]', { timeout: 60000 });
    await page.setInputFiles('#data-file', f);
    await page.waitForSelector('body[data-data="ready"]');
    // paste path too
    await page.fill('#data-text', 'query,passage\n"<img src=x onerror=window.__pwned=10>","<script>window.__pwned=11</script>"\n');
    await page.click('#btn-paste');
    await page.waitForFunction(() => document.getElementById('data-status').textContent.startsWith('pasted text'));
    const pasted = await page.textContent('#preview tbody');
    assert.ok(pasted.includes('<img src=x onerror=window.__pwned=10>'), 'pasted CSV shows literally');
    await page.setInputFiles('#data-file', f);
    await page.waitForFunction(() => document.getElementById('data-status').textContent.includes('6 pairs'));
    const preview = await page.textContent('#preview tbody');
    for (const x of P) assert.ok(preview.includes(x), `shown literally: ${x}`);
    assert.equal(await page.locator('#preview img, #preview script, #preview svg, #preview iframe, #preview a').count(), 0);
    const errs = await page.textContent('#data-error-list');
    // the C reader's messages (the CLI's), naming the user's file literally
    assert.ok(errs.includes("<img src=x onerror=window.__pwned=9>.jsonl:7: field 'positive': expected a string"), errs);
    assert.ok(errs.includes('<img src=x onerror=window.__pwned=9>.jsonl:8: invalid JSON'), errs);
    assert.ok((await page.textContent('#data-status')).includes('<img src=x onerror=window.__pwned=9>.jsonl'));
    // search shows passages literally too
    await page.fill('#search-q', '<img src=x onerror=window.__pwned=12>');
    await page.press('#search-q', 'Enter');
    await page.waitForSelector('#search-results li');
    assert.equal(await page.locator('#search-results img, #search-results script, #search-results svg').count(), 0);
    assert.ok((await page.textContent('#search-results')).includes('<script>window.__pwned=2</script>'));
    await page.waitForTimeout(300);
    assert.equal(await page.evaluate(() => window.__pwned), undefined, 'nothing executed');
    assert.deepEqual(violations, [], 'no CSP violations (nothing even tried to load)');
    assert.deepEqual(foreign(requests, server.origin), []);
    assert.ok(!requests.some((u) => /\/x$/.test(u)), 'no request for the <img src=x>');
  } finally {
    await b.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('without cross-origin isolation the page explains why and runs on one thread', async () => {
  // the same files served WITHOUT COOP/COEP: a tiny wrapper server that strips them
  const plain = http.createServer((req, res) => {
    const up = http.request({ host: '127.0.0.1', port: server.port, path: req.url, method: req.method }, (r) => {
      const h = { ...r.headers };
      delete h['cross-origin-opener-policy']; delete h['cross-origin-embedder-policy'];
      res.writeHead(r.statusCode, h);
      r.pipe(res);
    });
    req.pipe(up);
  });
  await new Promise((r) => plain.listen(0, '127.0.0.1', r));
  const origin = `http://127.0.0.1:${plain.address().port}`;
  const b = await openBrowser(origin);
  try {
    const { page } = b;
    await page.goto(origin + '/');
    await page.waitForSelector('body[data-model="ready"]', { timeout: 60000 });
    assert.equal(await page.evaluate(() => crossOriginIsolated), false);
    assert.equal(await page.isVisible('#isolation'), true);
    assert.match(await page.textContent('#isolation'), /not cross-origin isolated.*ONE thread/s);
    assert.equal((await page.evaluate(() => window.__embedtune.state().info)).threads, 1);
    const v = await page.evaluate(() => window.__embedtune.encode(['hello world']));
    assert.ok(v.length > 0 && v.every(Number.isFinite));
  } finally {
    await b.close();
    await new Promise((r) => { plain.closeAllConnections?.(); plain.close(r); });
  }
});
