#!/usr/bin/env node
// server.mjs - the tiny static server for the embedtune page (node:http, no framework).
//
//   node web/server.mjs [--port 8080] [--host 127.0.0.1] [--root DIST] [--wasm DIR] [--models DIR] [--model NAME]
//
// Without --root it serves the source tree: web/ at /, the built wasm module (--wasm, default build-wasm) at
// /wasm/, and models/ at /models/. With --root it serves one assembled folder (tools/build_web.sh makes it).
// /models/default.json names the model the page loads first: models/compact if it exists, else
// models/glove-bert-starter (or --model). Every response carries COOP/COEP/CORP (cross-origin isolation,
// so the threaded wasm core can use SharedArrayBuffer) and a Content-Security-Policy that allows nothing
// but this origin. Only GET/HEAD; no directory listings; no dotfiles; no path outside a mount.
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(HERE, '..');

export const CSP = [
  "default-src 'self'",
  "script-src 'self' 'wasm-unsafe-eval'",   // wasm compilation; no inline script, no eval
  "worker-src 'self'",                      // the page's Worker and Emscripten's pthread workers (same-origin URLs)
  "connect-src 'self'",
  "img-src 'self' blob: data:",
  "style-src 'self'",
  "font-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

export const SECURITY_HEADERS = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
  'Cross-Origin-Resource-Policy': 'same-origin',
  'Content-Security-Policy': CSP,
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
};

const TYPES = {
  '.html': 'text/html; charset=utf-8', '.mjs': 'text/javascript; charset=utf-8', '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8', '.wasm': 'application/wasm', '.json': 'application/json; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8', '.md': 'text/plain; charset=utf-8', '.jsonl': 'text/plain; charset=utf-8',
  '.csv': 'text/plain; charset=utf-8', '.tsv': 'text/plain; charset=utf-8', '.png': 'image/png', '.svg': 'image/svg+xml',
  '.ico': 'image/x-icon', '.safetensors': 'application/octet-stream',
};

/** The default model folder name under modelsDir. */
export function defaultModel(modelsDir, wanted) {
  if (wanted) return wanted;
  for (const n of ['compact', 'glove-bert-starter'])
    if (fs.existsSync(path.join(modelsDir, n, 'config.json'))) return n;
  return null;
}

/** The files of a model folder the page may fetch (relative paths). */
export function modelFiles(dir) {
  const want = ['config.json', 'vocab.txt', 'model.safetensors', 'modules.json', '1_Pooling/config.json',
    'sentence_bert_config.json', 'tokenizer_config.json', 'special_tokens_map.json', 'retrieval.json'];
  return want.filter((f) => fs.existsSync(path.join(dir, f)));
}

/** The wasm module files served at /wasm/ (exact names; nothing else of the build dir is exposed). */
export const WASM_FILES = /^(embedtune\.mjs|worker\.mjs|embedtune-core(-st)?\.(mjs|wasm)|embedtune-core\.worker\.js)$/;

/** Resolve a URL path under a mount; null if it escapes (traversal, dotfiles, NUL, backslash). */
export function safeJoin(root, rel) {
  let dec;
  try { dec = decodeURIComponent(rel); } catch { return null; }
  if (dec.includes('\0') || dec.includes('\\')) return null;
  const parts = dec.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.some((p) => p === '..' || p.startsWith('.'))) return null;
  const full = path.resolve(root, ...parts);
  const r = path.resolve(root);
  if (full !== r && !full.startsWith(r + path.sep)) return null;
  return full;
}

export function createServer(opts = {}) {
  const wasmDir = path.resolve(opts.wasm || path.join(REPO, 'build-wasm'));
  const modelsDir = path.resolve(opts.models || path.join(REPO, 'models'));
  const log = opts.log || (() => {});
  let mounts;
  if (opts.root) {
    mounts = [{ prefix: '/', dir: path.resolve(opts.root) }];
  } else {
    mounts = [
      { prefix: '/wasm/', dir: wasmDir, allow: (rel) => WASM_FILES.test(rel) },
      { prefix: '/models/', dir: modelsDir },
      { prefix: '/', dir: HERE, allow: (rel) => !/^(node_modules|tests|package(-lock)?\.json|server\.mjs)(\/|$)/.test(rel) },
    ];
  }
  const modelName = defaultModel(opts.root ? path.join(opts.root, 'models') : modelsDir, opts.model);

  function send(res, code, body, type = 'text/plain; charset=utf-8', extra = {}) {
    res.writeHead(code, { ...SECURITY_HEADERS, 'Content-Type': type, 'Content-Length': Buffer.byteLength(body),
      'Cache-Control': 'no-store', ...extra });
    res.end(body);
  }

  return http.createServer((req, res) => {
    const t0 = Date.now();
    res.on('finish', () => log(`${req.method} ${req.url} ${res.statusCode} ${Date.now() - t0}ms`));
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, 'method not allowed\n', undefined, { Allow: 'GET, HEAD' });
    const raw = req.url || '/';
    if (!raw.startsWith('/')) return send(res, 400, 'bad request\n');
    let p = raw.split('?')[0].split('#')[0];
    if (p === '/') p = '/index.html';
    if (p === '/models/default.json' && !opts.root) {
      const d = modelName ? path.join(modelsDir, modelName) : null;
      const body = JSON.stringify(d ? { name: modelName, base: `models/${modelName}/`, files: modelFiles(d) } : { name: null, files: [] });
      return send(res, 200, req.method === 'HEAD' ? '' : body, TYPES['.json']);
    }
    const m = mounts.find((mt) => p.startsWith(mt.prefix));
    if (!m) return send(res, 404, 'not found\n');
    const rel = p.slice(m.prefix.length);
    const full = safeJoin(m.dir, rel);
    if (!full) return send(res, 403, 'forbidden\n');
    let relNorm = path.relative(m.dir, full).split(path.sep).join('/');
    if (m.allow && !m.allow(relNorm)) return send(res, 404, 'not found\n');
    fs.realpath(full, (e, real) => {
      // symlinks may not lead out of the mount either
      const rootReal = fs.existsSync(m.dir) ? fs.realpathSync(m.dir) : m.dir;
      if (e) return send(res, 404, 'not found\n');
      if (real !== rootReal && !real.startsWith(rootReal + path.sep)) return send(res, 403, 'forbidden\n');
      fs.stat(real, (e2, st) => {
        if (e2 || !st.isFile()) return send(res, 404, 'not found\n');
        const type = TYPES[path.extname(real).toLowerCase()] || 'application/octet-stream';
        res.writeHead(200, { ...SECURITY_HEADERS, 'Content-Type': type, 'Content-Length': st.size, 'Cache-Control': 'no-cache' });
        if (req.method === 'HEAD') return res.end();
        fs.createReadStream(real).on('error', () => res.destroy()).pipe(res);
      });
    });
  });
}

function parseArgs(argv) {
  const o = { port: 8080, host: '127.0.0.1' };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i], v = () => { if (i + 1 >= argv.length) throw new Error(`${a} needs a value`); return argv[++i]; };
    if (a === '--port') o.port = Number(v());
    else if (a === '--host') o.host = v();
    else if (a === '--root') o.root = v();
    else if (a === '--wasm') o.wasm = v();
    else if (a === '--models') o.models = v();
    else if (a === '--model') o.model = v();
    else if (a === '--quiet') o.quiet = true;
    else if (a === '-h' || a === '--help') { o.help = true; }
    else throw new Error(`unknown option ${a} (try --help)`);
  }
  if (!Number.isInteger(o.port) || o.port < 0 || o.port > 65535) throw new Error(`--port: not a port number`);
  return o;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  let o;
  try { o = parseArgs(process.argv.slice(2)); } catch (e) { console.error(`server.mjs: ${e.message}`); process.exit(2); }
  if (o.help) {
    console.log('usage: node web/server.mjs [--port 8080] [--host 127.0.0.1] [--root DIST] [--wasm BUILD_DIR] [--models DIR] [--model NAME] [--quiet]');
    process.exit(0);
  }
  const srv = createServer({ ...o, log: o.quiet ? undefined : (l) => console.log(l) });
  srv.on('error', (e) => { console.error(`server.mjs: ${e.message}`); process.exit(1); });
  srv.listen(o.port, o.host, () => {
    const { port } = srv.address();
    console.log(`embedtune page: http://${o.host}:${port}/`);
  });
}
