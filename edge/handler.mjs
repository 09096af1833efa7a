// handler.mjs - the embedtune HTTP service shared by the Cloudflare Worker (edge/worker.mjs, under workerd or
// wrangler) and Deno (edge/deno.mjs): one engine (in a Worker the single-threaded SIMD Emscripten core: no threads,
// no SharedArrayBuffer; under Deno also the threaded core, deno.mjs --threads N), the bundled model and an index
// written by `embedtune index`.
//   GET  /health  -> {ok, model: {...}, index: {...} | null, heapBytes, limits}
//   POST /embed   {"texts": [...]} (or {"text": "..."}) -> {"dim", "embeddings": [[...], ...]}; with
//                 "Accept: application/octet-stream" the compact form: raw little-endian float32 [n * dim],
//                 headers X-Embedding-Count and X-Embedding-Dim
//   POST /search  {"query": "..."} or {"queries": [...]}, optional "k" (10), "mode" (dense | bm25 | hybrid; default
//                 the model's retrieval.json, else dense), "fusion" (as `embedtune search --fusion`)
//                 -> {"mode", "results": [{id, score, text?}, ...]} (per query: "results": [[...], ...])
// Every failure is a JSON {"error": "..."} with a 4xx status (400 bad input, 404, 405, 413 too large, 415) or 500
// when the engine itself fails (the engine is then re-created on the next request).
import { Embedtune } from './embedtune.mjs';

export const LIMITS = Object.freeze({
  maxBodyBytes: 256 * 1024, // request body
  maxTexts: 64,             // texts per /embed request
  maxQueries: 32,           // queries per /search request
  maxTextBytes: 16 * 1024,  // UTF-8 bytes per text or query (the model reads at most its max_seq_length tokens)
  maxK: 100,
});

const enc = new TextEncoder();
class HttpError extends Error { constructor(status, msg) { super(msg); this.status = status; } }

function json(status, obj, extra = {}) {
  return new Response(JSON.stringify(obj), { status, headers: { 'content-type': 'application/json; charset=utf-8', ...extra } });
}

async function readJson(request) {
  const ct = (request.headers.get('content-type') || '').toLowerCase();
  if (ct && !ct.startsWith('application/json')) throw new HttpError(415, `expected Content-Type application/json, got ${ct}`);
  const declared = Number(request.headers.get('content-length') || 0);
  if (declared > LIMITS.maxBodyBytes) throw new HttpError(413, `body of ${declared} bytes exceeds ${LIMITS.maxBodyBytes}`);
  const buf = new Uint8Array(await request.arrayBuffer());
  if (buf.length > LIMITS.maxBodyBytes) throw new HttpError(413, `body of ${buf.length} bytes exceeds ${LIMITS.maxBodyBytes}`);
  let body;
  try { body = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(buf)); } catch (e) { throw new HttpError(400, `body is not valid UTF-8 JSON: ${e.message}`); }
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new HttpError(400, 'body must be a JSON object');
  return body;
}

function textList(body, one, many, max) {
  let v;
  if (body[many] !== undefined) v = body[many];
  else if (body[one] !== undefined) v = [body[one]];
  else throw new HttpError(400, `missing field "${many}" (an array of strings) or "${one}" (a string)`);
  if (!Array.isArray(v)) throw new HttpError(400, `field "${many}" must be an array of strings`);
  if (v.length === 0) throw new HttpError(400, `field "${many}" is empty`);
  if (v.length > max) throw new HttpError(413, `${v.length} ${many} exceed the limit of ${max} per request`);
  v.forEach((t, i) => {
    if (typeof t !== 'string') throw new HttpError(400, `${many}[${i}] is not a string`);
    if (enc.encode(t).length > LIMITS.maxTextBytes) throw new HttpError(413, `${many}[${i}] exceeds ${LIMITS.maxTextBytes} bytes`);
  });
  return v;
}

/**
 * assets: {createCore(moduleArg) -> Promise<Module> (instantiates embedtune-core-st, or the threaded core), threads?:
 * the core's threads (default 1), model: {config, vocab, safetensors, modules?, pooling?, sbertConfig?, tokenizerConfig?,
 * retrieval?} (ArrayBuffers), index?: ArrayBuffer}.
 * Returns {fetch(request) -> Promise<Response>}. The engine is created on the first request.
 */
export function createApp(assets) {
  let engine = null;
  async function start() {
    const t0 = Date.now();
    const M = await assets.createCore({ print: () => {}, printErr: (t) => console.warn(t) });
    const et = Embedtune.fromCore(M, assets.model, assets.threads || 1);
    const index = assets.index ? et.openIndex(assets.index, assets.model.retrieval) : null;
    return { M, et, index, startMs: Date.now() - t0 };
  }
  async function getEngine() {
    if (!engine) engine = start().catch((e) => { engine = null; throw e; });
    return engine;
  }

  async function route(request) {
    const url = new URL(request.url);
    const path = url.pathname;
    const routes = { '/health': 'GET', '/embed': 'POST', '/search': 'POST' };
    if (!routes[path]) throw new HttpError(404, `no route ${path} (GET /health, POST /embed, POST /search)`);
    if (request.method !== routes[path]) throw new HttpError(405, `${path} takes ${routes[path]}, not ${request.method}`);
    const E = await getEngine();
    if (path === '/health') {
      const info = E.et.info;
      return json(200, {
        ok: true, startMs: E.startMs, heapBytes: E.M.HEAPU8.length,
        model: { dim: info.dim, maxLength: info.maxLength, layers: info.layers, pooling: info.pooling, simd: info.simd, threads: info.threads },
        index: E.index ? { docs: E.index.size, dtype: E.index.dtype, defaultMode: E.index.defaultMode } : null,
        limits: LIMITS,
      });
    }
    const body = await readJson(request);
    if (path === '/embed') {
      const texts = textList(body, 'text', 'texts', LIMITS.maxTexts);
      const emb = E.et.encode(texts);
      const d = E.et.dim;
      if ((request.headers.get('accept') || '').includes('application/octet-stream')) {
        return new Response(emb.buffer, { status: 200, headers: { 'content-type': 'application/octet-stream',
          'x-embedding-count': String(texts.length), 'x-embedding-dim': String(d) } });
      }
      const rows = [];
      for (let i = 0; i < texts.length; i++) rows.push(Array.from(emb.subarray(i * d, (i + 1) * d)));
      return json(200, { dim: d, embeddings: rows });
    }
    // /search
    if (!E.index) throw new HttpError(404, 'this deployment has no index (build one with `embedtune index`)');
    const single = body.queries === undefined;
    const queries = textList(body, 'query', 'queries', LIMITS.maxQueries);
    let k = 10;
    if (body.k !== undefined) {
      if (!Number.isInteger(body.k) || body.k < 1 || body.k > LIMITS.maxK) throw new HttpError(400, `"k" must be an integer in [1, ${LIMITS.maxK}]`);
      k = body.k;
    }
    if (body.mode !== undefined && !['dense', 'bm25', 'hybrid'].includes(body.mode)) throw new HttpError(400, '"mode" must be dense, bm25 or hybrid');
    if (body.fusion !== undefined && (typeof body.fusion !== 'string' || body.fusion.length > 200)) throw new HttpError(400, '"fusion" must be a string such as "convex:alpha=0.3"');
    let res;
    try {
      res = E.index.search(queries, { k, mode: body.mode, fusion: body.fusion });
    } catch (e) {
      if (e && e.code && !(e instanceof WebAssembly.RuntimeError)) throw new HttpError(400, e.message); // the C side's argument errors
      throw e;
    }
    const mode = body.mode || E.index.defaultMode;
    const clean = res.map((r) => r.map(({ id, score, text }) => (text === undefined ? { id, score } : { id, score, text })));
    return json(200, single ? { mode, results: clean[0] } : { mode, results: clean });
  }

  return {
    async fetch(request) {
      try {
        return await route(request);
      } catch (e) {
        if (e instanceof HttpError) return json(e.status, { error: e.message });
        // the engine failed (a wasm trap, out of memory): drop it, the next request starts a fresh one
        if (e instanceof WebAssembly.RuntimeError || (e && /memory/i.test(e.message || ''))) engine = null;
        return json(500, { error: `internal error: ${e && e.message ? e.message : e}` });
      }
    },
  };
}
