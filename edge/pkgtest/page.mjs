// page.mjs - the installed package used from a page, in headless Chromium (tools/test_package.sh):
//   node edge/pkgtest/page.mjs APP_DIR REF_DIR
// APP_DIR: an empty project with the tarball installed (node_modules/embedtune), this folder's page/ files and the
// model, texts and index copied in. REF_DIR: expected.jsonl (the native CLI's `encode` of texts.txt) and search.jsonl
// (its `search --index ... --mode hybrid -k 3 --json` of the page's query). Serves APP_DIR with web/server.mjs (the
// repo's static server: COOP/COEP, a CSP allowing only this origin) on 127.0.0.1 and drives Chromium through
// web/tests/helpers.mjs (playwright-core, the closed-network flags). Checks: embeddings on the page's thread (1 thread)
// and in a Web Worker (2 threads) within 1e-5 of native; the index search gives native's ids; the page is
// cross-origin isolated; the threaded core's pthread worker was loaded; no request left the origin and none was tried
// (the CSP would block it: no CSP violation in the console). Exit 1 on failure.
import { readFileSync } from 'node:fs';
import { openBrowser, foreign } from '../../web/tests/helpers.mjs';
import { createServer } from '../../web/server.mjs';

const [app, ref] = process.argv.slice(2);
if (!ref) { console.error('usage: node edge/pkgtest/page.mjs APP_DIR REF_DIR'); process.exit(2); }
let fails = 0;
const ok = (c, name, detail = '') => { if (c) console.log(`ok   page: ${name}`); else { fails++; console.log(`FAIL page: ${name} ${detail}`); } };
const srv = createServer({ root: app });
await new Promise((res) => srv.listen(0, '127.0.0.1', res));
const origin = `http://127.0.0.1:${srv.address().port}`;
const b = await openBrowser(origin, { acceptDownloads: false });
try {
  const t0 = Date.now();
  await b.page.goto(`${origin}/index.html`);
  await b.page.waitForFunction(() => window.__result, null, { timeout: 180000 });
  const r = await b.page.evaluate(() => window.__result);
  if (r.error) throw new Error(`the page failed: ${r.error}`);
  const expected = readFileSync(`${ref}/expected.jsonl`, 'utf8').trim().split('\n').map((l) => JSON.parse(l).embedding);
  const diff = (e) => {
    if (e.length !== expected.length * r.dim) return Infinity;
    let d = 0;
    for (let i = 0; i < expected.length; i++) for (let j = 0; j < r.dim; j++) d = Math.max(d, Math.abs(e[i * r.dim + j] - expected[i][j]));
    return d;
  };
  const d1 = diff(r.e1), d2 = diff(r.e2);
  ok(r.isolated && r.canUseThreads, 'cross-origin isolated (threads available)');
  ok(r.threadsPage === 1 && d1 <= 1e-5, `page thread (1 thread, ${r.simd}): ${expected.length} embeddings within ${d1.toExponential(2)} of native (<= 1e-5)`);
  ok(r.threadsWorker === 2 && d2 <= 1e-5, `Web Worker (${r.threadsWorker} threads): within ${d2.toExponential(2)} of native (<= 1e-5)`);
  const want = JSON.parse(readFileSync(`${ref}/search.jsonl`, 'utf8').trim()).results.map((h) => h.id);
  ok(r.hits.join(',') === want.join(','), `index search (hybrid) == native search --index: ${r.hits.join(',')}`, `native ${want.join(',')}`);
  const paths = [...new Set(b.requests.map((u) => u.replace(origin, '')))];
  ok(paths.includes('/node_modules/embedtune/embedtune-core.worker.js'), "the threaded core's pthread worker was loaded", paths.join(' '));
  const out = foreign(b.requests, origin);
  ok(out.length === 0, `no request outside ${origin} (${b.requests.length} requests, ${paths.length} distinct)`, out.slice(0, 5).join(' '));
  // the server's CSP stops a request to another origin before Chromium sends it; the attempt shows in the console
  const csp = b.logs.filter((l) => /Content Security Policy|Refused to/i.test(l));
  ok(csp.length === 0, 'no attempt blocked by the Content-Security-Policy', csp.slice(0, 3).join(' | '));
  console.log(`page: loaded and checked in ${Date.now() - t0} ms (busy machine)`);
} catch (e) {
  fails++;
  console.log(`FAIL page: ${e.message}`);
  for (const l of b.logs.slice(-20)) console.log(`  ${l}`);
} finally {
  await b.close();
  srv.closeAllConnections?.();
  srv.close();
}
process.exit(fails ? 1 : 0);
