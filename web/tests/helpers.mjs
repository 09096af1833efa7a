// helpers.mjs - shared setup of the browser tests: the static server (web/server.mjs) on a free port and
// headless Chromium (playwright-core, /usr/bin/chromium) with the closed-network flags of
// docs/wasm-build.md ("Headless Chromium on a closed network") and a fresh --user-data-dir. Every request the page or its workers make
// is recorded so the tests can assert that nothing left the origin.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { createServer } from '../server.mjs';

export const WEB = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const REPO = path.resolve(WEB, '..');
export const WASM_BUILD = process.env.ET_WASM_BUILD ? path.resolve(REPO, process.env.ET_WASM_BUILD) : path.join(REPO, 'build-wasm');
export const CHROMIUM = process.env.ET_CHROMIUM || '/usr/bin/chromium';
export const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

export async function startServer(opts = {}) {
  const srv = createServer({ wasm: WASM_BUILD, ...opts });
  await new Promise((res) => srv.listen(0, '127.0.0.1', res));
  const { port } = srv.address();
  return { srv, port, origin: `http://127.0.0.1:${port}`, close: () => new Promise((r) => { srv.closeAllConnections?.(); srv.close(r); }) };
}

/** A fresh browser profile; returns {ctx, page, requests, logs, close}. */
export async function openBrowser(origin, { acceptDownloads = true } = {}) {
  const dir = mkdtempSync(path.join(tmpdir(), 'et-chromium-'));
  const ctx = await chromium.launchPersistentContext(dir, {
    executablePath: CHROMIUM, headless: true, args: FLAGS, acceptDownloads, viewport: { width: 1100, height: 900 },
  });
  const requests = [], logs = [];
  ctx.on('request', (r) => requests.push(r.url()));                 // page + dedicated workers (+ service workers)
  const page = ctx.pages()[0] || await ctx.newPage();
  page.on('request', (r) => requests.push(r.url()));
  page.on('worker', (w) => logs.push(`[worker] ${w.url()}`));
  page.on('console', (m) => logs.push(`[console.${m.type()}] ${m.text()}`));
  page.on('pageerror', (e) => logs.push(`[pageerror] ${e.message}`));
  return {
    ctx, page, requests, logs,
    close: async () => { await ctx.close(); rmSync(dir, { recursive: true, force: true }); },
  };
}

/** The browser tests' one setup: the server, a browser on it and, with a prefix, a temp folder ({server, b, work});
 * on a failure what was opened is closed again. Use as
 *   before(async () => ({ server, b, work } = await openPage('et-web-x-')));  after(() => closePage({ server, b, work })); */
export async function openPage(prefix) {
  const server = await startServer();
  let b;
  try { b = await openBrowser(server.origin); } catch (e) { await server.close(); throw e; }
  return { server, b, work: prefix ? mkdtempSync(path.join(tmpdir(), prefix)) : undefined };
}

/** Closes what openPage opened (any of them may be missing); ET_WEB_LOG=1 prints the page's log first. */
export async function closePage({ server, b, work }) {
  if (b && process.env.ET_WEB_LOG) console.log(b.logs.join('\n'));
  if (b) await b.close();
  if (server) await server.close();
  if (work) rmSync(work, { recursive: true, force: true });
}

/** Requests that left `origin` (data:/blob: URLs are local). */
export function foreign(requests, origin) {
  return requests.filter((u) => !u.startsWith(origin + '/') && !u.startsWith('data:') && !u.startsWith('blob:' + origin));
}

/** Files of a STORE zip (what the page writes) -> {path: Buffer}; checks CRC32. */
export function unzipStore(buf) {
  const out = {};
  const crcT = new Uint32Array(256);
  for (let n = 0; n < 256; n++) { let c = n; for (let k = 0; k < 8; k++) c = c & 1 ? 0xEDB88320 ^ (c >>> 1) : c >>> 1; crcT[n] = c >>> 0; }
  const crc32 = (b) => { let c = 0xFFFFFFFF; for (let i = 0; i < b.length; i++) c = crcT[(c ^ b[i]) & 0xFF] ^ (c >>> 8); return (c ^ 0xFFFFFFFF) >>> 0; };
  const eocd = buf.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
  if (eocd < 0) throw new Error('zip: no end of central directory');
  const n = buf.readUInt16LE(eocd + 10);
  let p = buf.readUInt32LE(eocd + 16);
  for (let i = 0; i < n; i++) {
    if (buf.readUInt32LE(p) !== 0x02014b50) throw new Error('zip: bad central header');
    const method = buf.readUInt16LE(p + 10), crc = buf.readUInt32LE(p + 16), size = buf.readUInt32LE(p + 24);
    const nl = buf.readUInt16LE(p + 28), xl = buf.readUInt16LE(p + 30), cl = buf.readUInt16LE(p + 32), off = buf.readUInt32LE(p + 42);
    const name = buf.subarray(p + 46, p + 46 + nl).toString('utf8');
    if (method !== 0) throw new Error(`zip: ${name}: method ${method}, expected STORE`);
    const lnl = buf.readUInt16LE(off + 26), lxl = buf.readUInt16LE(off + 28);
    const data = buf.subarray(off + 30 + lnl + lxl, off + 30 + lnl + lxl + size);
    if (crc32(data) !== crc) throw new Error(`zip: ${name}: CRC mismatch`);
    out[name] = data;
    p += 46 + nl + xl + cl;
  }
  return out;
}
