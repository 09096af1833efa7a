// embedtune.mjs - the embedtune ES module: load a sentence-transformers model from its files,
// encode texts, search a corpus, export the model. Works in a page, a Web Worker, node 20 and Deno (threads too).
// Documented in wasm/README.md. Two ways to use it:
//   * Embedtune (this file): runs the engine on the calling thread. Fine in node and inside a Worker;
//     on a page's main thread it blocks while encoding.
//   * EmbedtuneWorker: the same API, running in wasm/worker.mjs (a Web Worker, or a node
//     worker_threads Worker), so a page never freezes. Every method returns a Promise.
// Files next to this one: embedtune-core.{mjs,wasm,worker.js} (threads; needs SharedArrayBuffer,
// i.e. a cross-origin isolated page, node or Deno; in node and Deno the pthreads start via embedtune-core.worker.mjs)
// and embedtune-core-st.{mjs,wasm} (one thread).

const isNode = typeof process !== 'undefined' && !!(process.versions && process.versions.node) &&
  typeof window === 'undefined' && typeof WorkerGlobalScope === 'undefined';

/** Threads to use: navigator.hardwareConcurrency (node: os.availableParallelism) capped at 8, or 1
 * when SharedArrayBuffer is unavailable (page not cross-origin isolated). */
export async function defaultThreads() {
  if (!canUseThreads()) return 1;
  let n = 1;
  if (isNode) {
    const os = await import('node:os');
    n = os.availableParallelism ? os.availableParallelism() : os.cpus().length;
  } else if (typeof navigator !== 'undefined' && navigator.hardwareConcurrency) {
    n = navigator.hardwareConcurrency;
  }
  return Math.max(1, Math.min(8, n | 0));
}

/** true when the threaded core can run: SharedArrayBuffer exists and (in browsers) the page is
 * cross-origin isolated. */
export function canUseThreads() {
  if (typeof SharedArrayBuffer === 'undefined') return false;
  if (!isNode && typeof crossOriginIsolated !== 'undefined' && !crossOriginIsolated) return false;
  return true;
}

const cores = new Map(); // "variant:threads" -> Promise<Module>

/** Instantiate the Emscripten core. opts: {threads, baseUrl}. threads > 1 needs canUseThreads(). */
export async function loadCore(opts = {}) {
  let threads = opts.threads ?? await defaultThreads();
  if (!canUseThreads()) threads = 1;
  threads = Math.max(1, Math.min(64, threads | 0));
  const variant = threads > 1 ? 'embedtune-core' : 'embedtune-core-st';
  const key = `${variant}:${threads}`;
  if (!cores.has(key)) cores.set(key, instantiate(variant, threads, opts.baseUrl));
  const M = await cores.get(key);
  return { M, threads };
}

async function instantiate(variant, threads, baseUrl) {
  const base = baseUrl ? new URL(baseUrl, import.meta.url) : new URL('.', import.meta.url);
  const moduleArg = { etPoolSize: threads - 1 };
  // stdout / stderr of the C side (the finetune command prints its table and errors there): to a
  // collector while a call runs (Module.etOut), else the console
  moduleArg.print = (t) => { if (moduleArg.etOut) moduleArg.etOut('out', t); else console.log(t); };
  moduleArg.printErr = (t) => { if (moduleArg.etOut) moduleArg.etOut('err', t); else console.warn(t); };
  if (isNode) {
    // Emscripten 3.1.6's ES6 glue is not node-ESM clean (docs/wasm-build.md): it calls require()
    // and reads __dirname, and would fetch() the .wasm by a plain path.
    const { createRequire } = await import('node:module');
    const { fileURLToPath } = await import('node:url');
    const path = await import('node:path');
    const { readFileSync } = await import('node:fs');
    const dir = fileURLToPath(base);
    globalThis.require ??= createRequire(import.meta.url);
    globalThis.__dirname ??= dir;
    moduleArg.wasmBinary = readFileSync(path.join(dir, `${variant}.wasm`));
    // Deno takes this branch too (it has node's process). The pthreads start through the ES-module wrapper
    // embedtune-core.worker.mjs (why: that file's header)
    moduleArg.locateFile = (p) => path.join(dir, p === 'embedtune-core.worker.js' ? 'embedtune-core.worker.mjs' : p);
  } else {
    moduleArg.locateFile = (p) => new URL(p, base).href;
  }
  const { default: create } = await import(new URL(`${variant}.mjs`, base).href);
  return create(moduleArg);
}

const DTYPES = { f32: 0, f16: 1, bf16: 2 };
const enc = new TextEncoder();
const dec = new TextDecoder();

function bytesOf(x, name) {
  if (x == null) return null;
  if (typeof x === 'string') return enc.encode(x);
  if (x instanceof Uint8Array) return x;
  if (x instanceof ArrayBuffer || (typeof SharedArrayBuffer !== 'undefined' && x instanceof SharedArrayBuffer)) return new Uint8Array(x);
  if (ArrayBuffer.isView(x)) return new Uint8Array(x.buffer, x.byteOffset, x.byteLength);
  throw new TypeError(`${name}: expected an ArrayBuffer, a typed array or a string`);
}

/** texts -> one blob of NUL-terminated UTF-8 texts (NULs inside a text are dropped). */
function textBlob(texts, what = 'texts') {
  const parts = texts.map((t, i) => {
    if (typeof t !== 'string') throw new TypeError(`${what}: text ${i} is not a string`);
    return enc.encode(t.includes('\0') ? t.replace(/\0/g, '') : t);
  });
  const blob = new Uint8Array(parts.reduce((s, b) => s + b.length + 1, 0));
  let off = 0;
  for (const b of parts) { blob.set(b, off); off += b.length + 1; }
  return blob;
}

/** UTF-8 byte spans [a0, b0, a1, b1, ...] of text -> [[start, end), ...] string (UTF-16) indices. */
function utf16Spans(text, spans) {
  const out = [];
  let byte = 0, i = 0;
  const at = (target) => { // advance (byte, i) to the byte offset target (a code point boundary)
    while (byte < target && i < text.length) {
      const c = text.codePointAt(i);
      byte += c < 0x80 ? 1 : c < 0x800 ? 2 : c < 0x10000 ? 3 : 4;
      i += c >= 0x10000 ? 2 : 1;
    }
    return i;
  };
  for (let j = 0; j < spans.length; j += 2) { const a = at(spans[j]); out.push([a, at(spans[j + 1])]); }
  return out;
}

/** load() file keys -> their paths in a model folder */
/** load() keys of the tokenizer files a folder may have instead of vocab.txt (the C loader picks one, as the command:
 * tokenizer.json, a sentencepiece .model, or vocab.json + merges.txt) */
export const TOKENIZER_PATHS = { tokenizerJson: 'tokenizer.json', spmModel: 'sentencepiece.bpe.model', spieceModel: 'spiece.model',
  sentencepieceModel: 'sentencepiece.model', vocabJson: 'vocab.json', merges: 'merges.txt' };
/** The files of a PEFT LoRA adapter folder (load's opts.adapters, finetune --lora's result.files). */
export const ADAPTER_FILES = ['adapter_config.json', 'adapter_model.safetensors'];
/** An adapter folder's files -> {r, alpha, targets, base, bytes} (its adapter_config.json, for display; the C side
 * reads and checks it) */
export function adapterInfo(files) {
  let c = {};
  try { c = JSON.parse(dec.decode(bytesOf(files['adapter_config.json'], 'adapter_config.json'))); } catch { /* shown without */ }
  const bytes = Object.values(files).reduce((n, b) => n + (b ? bytesOf(b, 'adapter').length : 0), 0);
  return { r: c.r, alpha: c.lora_alpha, targets: c.target_modules, base: c.base_model_name_or_path, bytes };
}
const FILE_PATHS = { config: 'config.json', vocab: 'vocab.txt', safetensors: 'model.safetensors', modules: 'modules.json',
  pooling: '1_Pooling/config.json', sbertConfig: 'sentence_bert_config.json', tokenizerConfig: 'tokenizer_config.json',
  retrieval: 'retrieval.json', ...TOKENIZER_PATHS };
/* Retrieval modes: MODES below (src/fusion.h et_retrieval_mode). */
/** The phases of a finetune run (src/finetune.h et_ft_phase), in order. */
export const FINETUNE_PHASES = ['load', 'parse', 'eval_before', 'mine', 'experts', 'train', 'refresh', 'eval_after', 'done'];

/** Map a file listing {relativePath: bytes} (e.g. from a folder picker) to load() files. */
export function filesFromFolder(listing) {
  const get = (n) => {
    for (const [k, v] of Object.entries(listing)) {
      const p = k.replace(/\\/g, '/').replace(/^\.?\//, '');
      if (p === n || p.endsWith('/' + n) && !p.slice(0, -n.length - 1).includes('/')) return v;
    }
    return undefined;
  };
  return {
    config: get('config.json'), vocab: get('vocab.txt'), safetensors: get('model.safetensors'),
    modules: get('modules.json'), pooling: get('1_Pooling/config.json'),
    sbertConfig: get('sentence_bert_config.json'), tokenizerConfig: get('tokenizer_config.json'),
    retrieval: get('retrieval.json'),
    ...Object.fromEntries(Object.entries(TOKENIZER_PATHS).map(([k, n]) => [k, get(n)]).filter(([, v]) => v !== undefined)),
  };
}

export class Embedtune {
  /**
   * Load a model from its files' bytes.
   * files: {config, vocab, safetensors, modules?, pooling?, sbertConfig?, tokenizerConfig?, retrieval?}
   *   (config.json, vocab.txt, model.safetensors, modules.json, 1_Pooling/config.json,
   *    sentence_bert_config.json, tokenizer_config.json, retrieval.json) as ArrayBuffer / typed array / string.
   * opts: {threads, baseUrl, adapters: [{'adapter_config.json': bytes, 'adapter_model.safetensors': bytes}, ...]
   * (PEFT LoRA adapter folders merged into the model in order, as `encode --adapter DIR` does)}. Rejects with an
   * Error naming the file and field on bad input.
   */
  static async load(files, opts = {}) {
    const { M, threads } = await loadCore(opts);
    const self = new Embedtune(M, threads);
    self._load(files || {}, opts.adapters || []);
    return self;
  }

  /**
   * Load a model on a core instantiated by the caller (createEmbedtune() of embedtune-core-st.mjs with its own
   * instantiateWasm, as a Cloudflare Worker must: no compiling wasm from bytes at run time). Synchronous.
   */
  static fromCore(M, files, threads = 1) {
    const self = new Embedtune(M, threads);
    self._load(files || {});
    return self;
  }

  constructor(M, threads) {
    this.M = M;
    this.err = M._et_wasm_error_new();
    this.h = 0;
    this.requestedThreads = threads;
    this.corpusTexts = null;
  }

  heap8() { return new Uint8Array(this.M.wasmMemory ? this.M.wasmMemory.buffer : this.M.HEAPU8.buffer); }
  heapF32(ptr, n) { return new Float32Array(this.heap8().buffer, ptr, n); }
  heapI32(ptr, n) { return new Int32Array(this.heap8().buffer, ptr, n); }

  fail(what) {
    const msg = this.M.UTF8ToString(this.M._et_wasm_error_msg(this.err));
    const e = new Error(msg || `${what} failed`);
    e.code = this.M._et_wasm_error_code(this.err);
    return e;
  }

  copyIn(bytes) { // -> [ptr, len]; ptr 0 for null
    if (!bytes) return [0, 0];
    const p = this.M._malloc(Math.max(1, bytes.length));
    if (!p) throw new Error('out of wasm memory');
    this.heap8().set(bytes, p);
    return [p, bytes.length];
  }

  _load(files, adapters = []) {
    this.files = files;
    this.adapters = [];
    if (files.vocab == null && Object.keys(TOKENIZER_PATHS).some((k) => files[k] != null)) this._loadDir(files);
    else this._loadBuffers(files);
    for (const a of adapters) this._applyAdapter(a);
    const rb = bytesOf(files.retrieval, 'retrieval');
    this._fillInfo(rb);
  }

  /** A PEFT LoRA adapter folder {'adapter_config.json': bytes, 'adapter_model.safetensors': bytes} merged into the
   * loaded model: written into MEMFS and read and merged by the command's own code (et_wasm_apply_adapter:
   * et_lora_apply_dir, as `encode --adapter DIR`). Errors name the file and field. The files are kept (copies),
   * so a later run can start from the same model. */
  _applyAdapter(files) {
    for (const n of ADAPTER_FILES) if (files[n] == null) throw new Error(`${n}: missing (a LoRA adapter folder has ${ADAPTER_FILES.join(' and ')})`);
    const dir = `/et_adapter_${Math.floor(Math.random() * 1e9)}`, kept = {};
    this._mkdirs(dir);
    for (const n of ADAPTER_FILES) { kept[n] = bytesOf(files[n], n).slice(); this.M.FS.writeFile(`${dir}/${n}`, kept[n]); }
    const [dp] = this.copyIn(enc.encode(dir + '\0'));
    try {
      if (this.M._et_wasm_apply_adapter(this.h, dp, this.err)) { const e = this.fail('adapter'); e.message = e.message.split(`${dir}/`).join('').split(dir).join('adapter'); throw e; }
    } finally { this.M._free(dp); this._rmTree(dir); }
    this.adapters.push(kept);
  }

  _loadBuffers(files) {
    for (const [k, n] of [['config', 'config.json'], ['vocab', 'vocab.txt'], ['safetensors', 'model.safetensors']])
      if (files[k] == null) throw new Error(`${n}: missing (files.${k} is required)`);
    const order = ['config', 'vocab', 'safetensors', 'modules', 'pooling', 'sbertConfig', 'tokenizerConfig'];
    const bufs = order.map((k) => this.copyIn(bytesOf(files[k], k)));
    try {
      const h = this.M._et_wasm_load(...bufs.flat(), this.requestedThreads, this.err);
      if (!h) throw this.fail('load');
      this.h = h;
    } finally {
      for (const [p] of bufs) if (p) this.M._free(p);
    }
  }

  /** A folder without vocab.txt (tokenizer.json, a .model, vocab.json + merges.txt): written into MEMFS and loaded
   * by the command's own loader (et_wasm_load_dir); the folder stays while the model lives (saving copies its
   * tokenizer files). */
  _loadDir(files) {
    for (const [k, n] of [['config', 'config.json'], ['safetensors', 'model.safetensors']])
      if (files[k] == null) throw new Error(`${n}: missing (files.${k} is required)`);
    const dir = `/et_model_${Math.floor(Math.random() * 1e9)}`;
    for (const [k, rel] of Object.entries(FILE_PATHS)) {
      if (files[k] == null || k === 'retrieval') continue;
      const p = `${dir}/${rel}`;
      this._mkdirs(p.slice(0, p.lastIndexOf('/')));
      this.M.FS.writeFile(p, bytesOf(files[k], k));
    }
    const [dp] = this.copyIn(enc.encode(dir + '\0'));
    try {
      const h = this.M._et_wasm_load_dir(dp, this.requestedThreads, this.err);
      if (!h) throw this.fail('load');
      this.h = h;
      this.modelDir = dir;
    } catch (e) {
      this._rmTree(dir);
      throw e;
    } finally { this.M._free(dp); }
  }

  _fillInfo(rb) {
    this.retrievalBytes = rb ? rb.slice() : null; // a copy: the caller's buffers may be transferred away (worker)
    if (rb) {
      const [rp, rl] = this.copyIn(rb);
      try { if (this.M._et_wasm_set_retrieval(this.h, rp, rl, this.err)) throw this.fail('load (retrieval.json)'); } finally { this.M._free(rp); }
    }
    this.dim = this.M._et_wasm_dim(this.h);
    this.maxLength = this.M._et_wasm_max_len(this.h);
    this.threads = this.M._et_wasm_threads(this.h);
    this.info = {
      dim: this.dim, maxLength: this.maxLength, threads: this.threads, vocabSize: this.M._et_wasm_vocab_size(this.h),
      layers: this.M._et_wasm_num_layers(this.h), pooling: this.M._et_wasm_pooling(this.h) ? 'cls' : 'mean',
      normalize: !!this.M._et_wasm_normalize(this.h), simd: this.M.UTF8ToString(this.M._et_wasm_simd_name()),
      int8: !!this.M._et_wasm_int8(this.h, -1), // an int8 export (docs/int8.md) encodes in int8 by default
      retrieval: this.retrievalInfo(),
      adapters: this.adapters.map(adapterInfo), // the LoRA adapters merged in (load's opts.adapters, a finetune --lora run)
    };
  }

  /** The model's retrieval settings: {mode (retrieval.json's default mode, else 'dense'), fusion (one line,
   * e.g. 'convex minmax alpha 0.3'), source: 'retrieval.json' | 'default'}. */
  retrievalInfo() {
    const [mode, fusion, source] = this.M.UTF8ToString(this.M._et_wasm_retrieval_describe(this.h)).split('|');
    return { mode, fusion, source };
  }

  check() { if (!this.h) throw new Error('this model was disposed'); }

  /** texts: string[] -> Float32Array [texts.length * dim] (row i = text i).
   * opts: {batch=32, maxLength, onProgress(done, total) -> true to cancel, int8: true|false (int8 inference, docs/int8.md;
   * default: the model's own, on for an int8 export)}. */
  encode(texts, opts = {}) {
    this.check();
    if (!Array.isArray(texts)) throw new TypeError('encode: texts must be an array of strings');
    const blob = textBlob(texts, 'encode'), total = blob.length;
    const n = texts.length, d = this.dim;
    const [bp] = this.copyIn(blob.length ? blob : new Uint8Array(1));
    const op = this.M._malloc(Math.max(4, n * d * 4));
    const prev = this.M.etProgress;
    this.M.etProgress = opts.onProgress ? (kind, done, tot) => opts.onProgress(done, tot) : null;
    const prevInt8 = opts.int8 === undefined ? -1 : this.M._et_wasm_int8(this.h, opts.int8 ? 1 : 0);
    try {
      const s = this.M._et_wasm_encode(this.h, bp, total, n, opts.batch | 0, opts.maxLength | 0, op, this.err);
      if (s) throw this.fail('encode');
      return this.heapF32(op, n * d).slice();
    } finally {
      if (prevInt8 >= 0) this.M._et_wasm_int8(this.h, prevInt8);
      this.M.etProgress = prev;
      this.M._free(bp);
      this.M._free(op);
    }
  }

  /** The corpus to search: texts (opts as encode: batch, maxLength; dim: cut each embedding to its
   * first dim values and re-normalise, as `search --dim`; int8: int8 inference, as `search --int8`; queries
   * get the same) are encoded and indexed by BM25 in C (the hybrid engine of `embedtune search`: dense, bm25
   * and hybrid modes). onProgress(done, total, step) -> true to cancel: step 'encode' (texts, after each batch),
   * then 'BM25 index' (docs, at 0, every 2048 and at the end); embeddings
   * (Float32Array [n*dim]) give a dense-only corpus. Returns n. */
  setCorpus(corpus, opts = {}) {
    this.check();
    let emb = corpus;
    if (Array.isArray(corpus)) {
      this.corpusTexts = null;
      this.indexed = false; // the C side drops the previous index first, so a failed call leaves none
      const blob = textBlob(corpus, 'setCorpus');
      const [bp] = this.copyIn(blob.length ? blob : new Uint8Array(1));
      const prev = this.M.etProgress;
      this.M.etProgress = opts.onProgress ? (kind, done, tot) => opts.onProgress(done, tot, kind === 2 ? 'BM25 index' : 'encode') : null;
      try {
        if (this.M._et_wasm_index_texts(this.h, bp, blob.length, corpus.length, opts.batch | 0, opts.maxLength | 0, opts.dim | 0,
          opts.int8 ? 1 : 0, this.err)) throw this.fail('setCorpus');
      } finally { this.M.etProgress = prev; this.M._free(bp); }
      this.corpusTexts = corpus.slice();
      this.indexed = true;
      return corpus.length;
    }
    this.corpusTexts = null;
    this.indexed = false;
    if (!(emb instanceof Float32Array) || emb.length % this.dim) throw new TypeError(`setCorpus: expected texts or a Float32Array of n*${this.dim} floats`);
    const n = emb.length / this.dim;
    const p = this.M._malloc(Math.max(4, emb.length * 4));
    try {
      this.heapF32(p, emb.length).set(emb);
      if (this.M._et_wasm_set_corpus(this.h, p, n, this.err)) throw this.fail('setCorpus');
    } finally { this.M._free(p); }
    return n;
  }

  /** query: string or Float32Array [dim] -> [{index, score, text?}] best first (top k).
   * mode: 'dense' (cosine, default), 'bm25' or 'hybrid' (the model's retrieval.json fusion, else the
   * default one); bm25 and hybrid need a string query and setCorpus with texts. */
  search(query, k = 10, mode = 'dense') {
    this.check();
    if (!(mode in MODES)) throw new Error(`search: mode must be dense, bm25 or hybrid, got ${mode}`);
    if (this.indexed && typeof query === 'string') return this.searchMode(query, k, mode);
    if (mode !== 'dense') throw new TypeError(`search: mode ${mode} needs a string query and setCorpus with texts`);
    const q = typeof query === 'string' ? this.encode([query]) : query;
    if (!(q instanceof Float32Array) || q.length !== this.dim) throw new TypeError(`search: query must be a string or a Float32Array of ${this.dim} floats`);
    k = Math.max(1, k | 0);
    const qp = this.M._malloc(this.dim * 4), ip = this.M._malloc(k * 4), sp = this.M._malloc(k * 4);
    try {
      this.heapF32(qp, this.dim).set(q);
      if (this.M._et_wasm_search(this.h, qp, 1, k, ip, sp, this.err)) throw this.fail('search');
      const idx = this.heapI32(ip, k).slice(), sc = this.heapF32(sp, k).slice();
      const out = [];
      for (let i = 0; i < k; i++) {
        if (idx[i] < 0) break;
        const r = { index: idx[i], score: sc[i] };
        if (this.corpusTexts) r.text = this.corpusTexts[idx[i]];
        out.push(r);
      }
      return out;
    } finally { this.M._free(qp); this.M._free(ip); this.M._free(sp); }
  }

  searchMode(query, k, mode) {
    k = Math.max(1, k | 0);
    const [qp] = this.copyIn(enc.encode(query.replace(/\0/g, '') + '\0'));
    const ip = this.M._malloc(k * 4), sp = this.M._malloc(k * 4);
    try {
      if (this.M._et_wasm_search_mode(this.h, qp, MODES[mode], k, ip, sp, this.err)) throw this.fail('search');
      const idx = this.heapI32(ip, k).slice(), sc = this.heapF32(sp, k).slice(), out = [];
      for (let i = 0; i < k && idx[i] >= 0; i++) out.push({ index: idx[i], score: sc[i], ...(this.corpusTexts ? { text: this.corpusTexts[idx[i]] } : {}) });
      return out;
    } finally { this.M._free(qp); this.M._free(ip); this.M._free(sp); }
  }

  /** Open a search index written by `embedtune index` (its bytes) for this model; retrieval: the model folder's
   * retrieval.json (text or bytes; omitted = the defaults: dense, fusion convex alpha 0.2). Throws if the index
   * was built with another model or is damaged (the message names the part). */
  openIndex(bytes, retrieval) {
    this.check();
    const [bp, bl] = this.copyIn(bytesOf(bytes, 'index'));
    const [rp, rl] = this.copyIn(retrieval == null ? null : bytesOf(retrieval, 'retrieval'));
    try {
      const h = this.M._et_wasm_index_open(this.h, bp, bl, rp, rl, this.err);
      if (!h) throw this.fail('openIndex');
      return new EmbedtuneIndex(this, h);
    } finally { this.M._free(bp); if (rp) this.M._free(rp); }
  }

  /** The model as a sentence-transformers folder: {relativePath: Uint8Array}. opts: {dtype: 'f32'|'f16'|'bf16'}. */
  exportFiles(opts = {}) {
    this.check();
    const dt = DTYPES[(opts.dtype || 'f32').toLowerCase()];
    if (dt === undefined) throw new Error(`exportFiles: dtype must be f32, f16 or bf16, got ${opts.dtype}`);
    const FS = this.M.FS;
    const dir = `/et_export_${Date.now()}_${Math.floor(Math.random() * 1e9)}`;
    const dp = this.copyIn(enc.encode(dir + '\0'))[0];
    try {
      if (this.M._et_wasm_save(this.h, dp, dt, this.err)) throw this.fail('exportFiles');
    } finally { this.M._free(dp); }
    const out = {};
    const walk = (abs, rel) => {
      for (const name of FS.readdir(abs)) {
        if (name === '.' || name === '..') continue;
        const a = `${abs}/${name}`, r = rel ? `${rel}/${name}` : name;
        if (FS.isDir(FS.stat(a).mode)) { walk(a, r); out[r + '/'] = new Uint8Array(0); FS.rmdir(a); }
        else { out[r] = FS.readFile(a); FS.unlink(a); }
      }
    };
    walk(dir, '');
    FS.rmdir(dir);
    // the retrieval settings (fusion.h) travel with the model as they came (e.g. finetune's learned fusion)
    if (this.retrievalBytes) out['retrieval.json'] = this.retrievalBytes.slice();
    for (const k of Object.keys(out)) if (k.endsWith('/') && Object.keys(out).some((o) => o !== k && o.startsWith(k))) delete out[k];
    return out;
  }

  /** The words of each text that are terms of the query by BM25's token rule (src/bm25.h, what a search
   * result highlights): for text i, [[start, end), ...] as string (UTF-16) indices. */
  matchTerms(query, texts) {
    const [qp] = this.copyIn(enc.encode(String(query).replace(/\0/g, '') + '\0'));
    try {
      return texts.map((t) => {
        const bytes = enc.encode(String(t).replace(/\0/g, ' ') + '\0');
        const [tp] = this.copyIn(bytes);
        let cap = 64, n, spans;
        try {
          for (;;) {
            const sp = this.M._malloc(cap * 8);
            n = this.M._et_wasm_match_spans(qp, tp, sp, cap);
            spans = this.heapI32(sp, 2 * Math.max(0, Math.min(n, cap))).slice();
            this.M._free(sp);
            if (n < 0) throw new Error('matchTerms: out of wasm memory');
            if (n <= cap) break;
            cap = n;
          }
        } finally { this.M._free(tp); }
        return utf16Spans(t, spans);
      });
    } finally { this.M._free(qp); }
  }

  /** Token strings of a text (WordPiece, without [CLS]/[SEP]); handy for debugging. */
  tokenize(text) {
    this.check();
    const [tp] = this.copyIn(enc.encode(text.replace(/\0/g, '') + '\0'));
    try {
      let max = 256, n;
      for (;;) {
        const ip = this.M._malloc(max * 4);
        n = this.M._et_wasm_tokenize(this.h, tp, ip, max);
        if (n <= max) {
          const ids = this.heapI32(ip, Math.max(0, n)).slice();
          this.M._free(ip);
          return Array.from(ids, (id) => this.M.UTF8ToString(this.M._et_wasm_token(this.h, id)));
        }
        this.M._free(ip);
        max = n;
      }
    } finally { this.M._free(tp); }
  }

  // ---------------------------------------------------------------- FINETUNE (the whole workflow, in C)
  // Files go into the module's file system (MEMFS); C reads them exactly as the native command does.

  _mkdirs(path) {
    const FS = this.M.FS;
    let d = '';
    for (const p of path.split('/').filter(Boolean)) { d += '/' + p; try { FS.mkdir(d); } catch { /* exists */ } }
  }

  _rmTree(p) {
    const FS = this.M.FS;
    try {
      if (FS.isDir(FS.stat(p).mode)) { for (const n of FS.readdir(p)) if (n !== '.' && n !== '..') this._rmTree(`${p}/${n}`); FS.rmdir(p); }
      else FS.unlink(p);
    } catch { /* gone */ }
  }

  _readTree(dir) {
    const FS = this.M.FS, out = {};
    const walk = (abs, rel) => {
      for (const name of FS.readdir(abs)) {
        if (name === '.' || name === '..') continue;
        const a = `${abs}/${name}`, r = rel ? `${rel}/${name}` : name;
        if (FS.isDir(FS.stat(a).mode)) walk(a, r); else out[r] = FS.readFile(a);
      }
    };
    walk(dir, '');
    return out;
  }

  /** A data file's name as it is written to MEMFS: the extension decides the reader (data.h). */
  static dataFileName(name) {
    const base = String(name || 'data').split(/[\\/]/).pop().replace(/[^A-Za-z0-9._-]+/g, '_').replace(/^\.+/, '') || 'data';
    return base.slice(-100);
  }

  /** The pairs file as `embedtune finetune` reads it: {rows, test, K, expert_names, has_label, negatives,
   * bad, errors: ["file:line: reason"], preview: [{row, id, query, passage, label, scores, test}]} plus
   * passages: the file's distinct passages (what the held-out evaluation and the search box search). */
  previewPairs(bytes, name, maxRows = 50) {
    this.check();
    const dir = `/et_preview_${Math.floor(Math.random() * 1e9)}`, path = `${dir}/${Embedtune.dataFileName(name)}`;
    this._mkdirs(dir);
    this.M.FS.writeFile(path, bytesOf(bytes, 'data'));
    const [pp] = this.copyIn(enc.encode(path + '\0'));
    const np = this.M._malloc(8), lp = this.M._malloc(8);
    try {
      const local = (m) => m.split(path).join(String(name)); // messages name the user's file, not the MEMFS path
      const sp = this.M._et_wasm_pairs_preview(pp, maxRows, this.err);
      if (!sp) { const e = this.fail('previewPairs'); e.message = local(e.message); throw e; }
      const out = JSON.parse(this.M.UTF8ToString(sp));
      out.errors = out.errors.map(local);
      this.M._free(sp);
      const bp = this.M._et_wasm_pairs_passages(pp, np, lp, this.err);
      if (!bp) throw this.fail('previewPairs');
      out.passages = this._takeBlob(bp, np, lp);
      return out;
    } finally { this.M._free(pp); this.M._free(np); this.M._free(lp); this._rmTree(dir); }
  }

  /** A C blob of n NUL-terminated texts (n at np, its length at lp) -> string[]; frees the blob. */
  _takeBlob(bp, np, lp) {
    const n = this.heapI32(np, 1)[0], len = this.heapI32(lp, 1)[0] >>> 0;
    const blob = this.heap8().slice(bp, bp + len);
    this.M._free(bp);
    const out = [];
    for (let i = 0, off = 0; i < n; i++) { const z = blob.indexOf(0, off); out.push(dec.decode(blob.subarray(off, z))); off = z + 1; }
    return out;
  }

  /** Passages without questions as `embedtune finetune --corpus` reads them (a BEIR corpus.jsonl with title +
   * text, JSONL with "text", or one passage per line; the name's ending decides, as natively) -> string[].
   * Errors name the user's file and line. */
  readPassages(bytes, name) {
    this.check();
    const dir = `/et_corpus_${Math.floor(Math.random() * 1e9)}`, path = `${dir}/${Embedtune.dataFileName(name)}`;
    this._mkdirs(dir);
    this.M.FS.writeFile(path, bytesOf(bytes, 'corpus'));
    const [pp] = this.copyIn(enc.encode(path + '\0'));
    const np = this.M._malloc(8), lp = this.M._malloc(8);
    try {
      const bp = this.M._et_wasm_passages_read(pp, np, lp, this.err);
      if (!bp) { const e = this.fail('readPassages'); e.message = e.message.split(path).join(String(name)); throw e; }
      return this._takeBlob(bp, np, lp);
    } finally { this.M._free(pp); this.M._free(np); this.M._free(lp); this._rmTree(dir); }
  }

  /**
   * Run `embedtune finetune` on this model and a data file (the same command as natively: options,
   * defaults, validation messages, split, mining, experts, training, evaluation, --json report).
   * data: bytes of a pairs / STS file, name: its file name (the extension picks the reader).
   * args: further finetune options, e.g. ['--loss', 'infonce', '--epochs', '1', '--seed', '42'] (not
   * --model/--data/--out/--json/--threads/--corpus, which this sets). opts.corpus: {bytes, name}, passages
   * without questions (finetune --corpus: adapts on them). opts.onProgress({phase, done, total, loss,
   * lr, epoch, examplesPerS, step, unit}) -> true cancels (rejects with code 8); step: the phase's step ('' for
   * none), e.g. 'encode eval corpus', 'BM25 index', 'fusion cross-validation' (et_ft_progress.step), whose
   * done / total count `unit` ('texts', 'docs', 'queries', 'grid points', 'steps') and restart at each step. On success this object holds the
   * tuned model and the call returns {result (the --json report), files (the tuned folder), output
   * (the command's printed table)}; on failure the starting model is loaded again.
   * With '--lora', R in args (a LoRA adapter only; give '--lora-base', NAME too, else adapter_config.json names the
   * run's in-memory folder): files is the PEFT adapter folder (adapter_config.json, adapter_model.safetensors,
   * retrieval.json) and this object holds the starting model with that adapter merged in (info.adapters;
   * exportFiles() writes that merged model). A model loaded with adapters starts the run merged (saved as f32).
   */
  finetune(data, name, args = [], opts = {}) {
    this.check();
    const FS = this.M.FS, M = this.M, start = this.files, startAdapters = this.adapters;
    const lora = args.map(String).includes('--lora');
    const root = `/et_ft_${Math.floor(Math.random() * 1e9)}`;
    const dataPath = `${root}/data/${Embedtune.dataFileName(name)}`, modelDir = `${root}/model`, outDir = `${root}/out`;
    this._mkdirs(`${root}/data`);
    FS.writeFile(dataPath, bytesOf(data, 'data'));
    const corpus = opts.corpus ? ['--corpus', `${root}/corpus/${Embedtune.dataFileName(opts.corpus.name)}`] : [];
    if (opts.corpus) { this._mkdirs(`${root}/corpus`); FS.writeFile(corpus[1], bytesOf(opts.corpus.bytes, 'corpus')); }
    if (startAdapters.length) { // the loaded model has adapters merged in: the run starts from that model (saved as f32)
      const [dp] = this.copyIn(enc.encode(modelDir + '\0'));
      try { if (M._et_wasm_save(this.h, dp, 0, this.err)) throw this.fail('finetune (the starting model)'); } finally { M._free(dp); }
      if (this.retrievalBytes) FS.writeFile(`${modelDir}/retrieval.json`, this.retrievalBytes);
    } else {
      for (const [k, rel] of Object.entries(FILE_PATHS)) {
        if (start[k] == null) continue;
        const p = `${modelDir}/${rel}`;
        this._mkdirs(p.slice(0, p.lastIndexOf('/')));
        FS.writeFile(p, bytesOf(start[k], k));
      }
    }
    // memory: without --mem-budget the C side checks the run's up-front estimate against what the wasm heap can
    // still give (et_wasm_mem_budget_mb) and refuses, with the figures, a run that would not fit
    const argv = ['--model', modelDir, '--data', dataPath, '--out', outDir, '--json', `${root}/result.json`, '--quiet',
      '--threads', String(this.threads), ...corpus, ...args.map(String)];
    const blob = textBlob(argv, 'finetune');
    const lines = [], out = [];
    // the search index's embeddings (setCorpus with texts, full size, fp32, this model) go to the run: its evaluation
    // before training copies those of the held-out passages instead of encoding them again (et_finetune_cfg.known);
    // the model's pool is released first: the run makes its own (the pthread pool has threads - 1 workers)
    this.knownPassages = this.indexed ? M._et_wasm_keep_index(this.h) : 0;
    this._free();
    this.indexed = false;
    const [bp, len] = this.copyIn(blob);
    const prevP = M.etFinetuneProgress, prevO = M.etOut;
    M.etFinetuneProgress = (phase, done, total, loss, lr, epoch, eps, step, unit) => (opts.onProgress ? !!opts.onProgress({
      phase: FINETUNE_PHASES[phase] || String(phase), done, total, loss, lr, epoch, examplesPerS: eps, step, unit }) : false);
    M.etOut = (kind, t) => (kind === 'err' ? lines : out).push(t);
    let rc;
    try { rc = M._et_wasm_finetune(bp, len, argv.length); } finally {
      M.etFinetuneProgress = prevP; M.etOut = prevO; M._free(bp);
    }
    try {
      if (rc !== 0) {
        const msg = (lines.filter((l) => l.trim()).pop() || `finetune failed (exit status ${rc})`)
          .replace(/^embedtune finetune: (error: )?/, '').split(dataPath).join(String(name))
          .split(corpus[1] || '\0').join(String(opts.corpus?.name)).split(`${root}/`).join('');
        const e = new Error(msg);
        e.code = /cancelled/.test(msg) ? 8 : rc === 2 ? 4 : 1;
        throw e;
      }
      const result = JSON.parse(dec.decode(FS.readFile(`${root}/result.json`)));
      const files = this._readTree(outDir);
      if (lora) { // --out is a PEFT adapter folder: the model is the starting one with the adapter merged in (as
        // `encode --model BASE --adapter OUT`), searched with the fusion the run learned (OUT/retrieval.json)
        const { retrieval, ...base } = start;
        this._load(files['retrieval.json'] ? { ...base, retrieval: files['retrieval.json'] } : base,
          [...startAdapters, Object.fromEntries(ADAPTER_FILES.map((n) => [n, files[n]]))]);
      } else {
        const keyed = {};
        for (const [k, rel] of Object.entries(FILE_PATHS)) if (files[rel]) keyed[k] = files[rel];
        this._load(keyed);
      }
      return { result, files, output: out.join('\n') };
    } catch (e) {
      if (!this.h) this._load(start, startAdapters);
      throw e;
    } finally { this._rmTree(root); }
  }

  _free() {
    if (this.tr) this.trainEnd();
    if (this.h) this.M._et_wasm_free(this.h);
    this.h = 0;
    if (this.modelDir) this._rmTree(this.modelDir);
    this.modelDir = null;
    this.corpusTexts = null;
  }

  // ---------------------------------------------------------------- TRAINING (src/train.h)
  // A session trains THIS model in place, in chunks (so a Worker can take messages in between):
  //   trainBegin(jsonl, cfg) -> {step, totalSteps, examples, negatives}
  //   trainResume(checkpointFiles)  (optional, right after trainBegin with the same jsonl + cfg)
  //   trainRun(steps, onStep) -> {step, totalSteps, done}   (repeat until done)
  //   trainCheckpoint() -> {relativePath: Uint8Array} (out_dir/latest + its checkpoint folder)
  //   trainEnd()
  // jsonl: the training file (et_train_data_read format: {"query","positive","negatives","negative_queries",
  // "label","scores"} per line) as a string or bytes. cfg: {loss: 'infonce'|'mse'|'soft1'|'soft2'|'soft3'|'clp',
  // epochs, batch, lr, maxLenQ, maxLenD, moeExperts (0 = dense), warmupRatio, seed}.
  // onStep({step, totalSteps, loss, lr, epoch, gradNorm, examplesPerS}) -> true to stop after that step.

  trainBegin(jsonl, cfg = {}) {
    this.check();
    if (this.tr) this.trainEnd();
    const LOSSES = { infonce: 0, mse: 1, soft1: 2, soft2: 3, soft3: 4, clp: 5 };
    const loss = LOSSES[String(cfg.loss || 'infonce').toLowerCase()];
    if (loss === undefined) throw new Error(`trainBegin: loss must be one of ${Object.keys(LOSSES).join(', ')}, got ${cfg.loss}`);
    const FS = this.M.FS;
    this.trDir = `/et_train_${Math.floor(Math.random() * 1e9)}`;
    FS.mkdir(this.trDir);
    const dataPath = `${this.trDir}/train.jsonl`, outDir = `${this.trDir}/out`;
    FS.writeFile(dataPath, bytesOf(jsonl, 'jsonl'));
    const [dp] = this.copyIn(enc.encode(dataPath + '\0')), [op] = this.copyIn(enc.encode(outDir + '\0'));
    try {
      const t = this.M._et_wasm_train_begin(this.h, dp, op, loss, cfg.epochs | 0, cfg.batch | 0, +cfg.lr || 0,
        cfg.maxLenQ | 0, cfg.maxLenD | 0, cfg.moeExperts | 0, cfg.warmupRatio ?? -1, Number(cfg.seed ?? 42), this.err);
      if (!t) throw this.fail('trainBegin');
      this.tr = t;
    } finally { this.M._free(dp); this.M._free(op); }
    this.trOut = outDir;
    return this.trainInfo();
  }

  trainInfo() {
    if (!this.tr) throw new Error('no training session (call trainBegin first)');
    const M = this.M, t = this.tr;
    return { step: M._et_wasm_train_step(t), totalSteps: M._et_wasm_train_total(t), examples: M._et_wasm_train_examples(t),
      negatives: M._et_wasm_train_negatives(t) };
  }

  /** Restore a checkpoint from trainCheckpoint() files into this session (same data and settings). */
  trainResume(files) {
    this.trainInfo();
    const FS = this.M.FS;
    for (const [rel, bytes] of Object.entries(files)) {
      if (rel.includes('..') || rel.startsWith('/')) throw new Error(`trainResume: bad path ${rel}`);
      const parts = rel.split('/');
      let d = this.trOut;
      for (const p of [null, ...parts.slice(0, -1)]) { if (p) d += '/' + p; try { FS.mkdir(d); } catch { /* exists */ } }
      FS.writeFile(`${this.trOut}/${rel}`, bytesOf(bytes, rel));
    }
    if (this.M._et_wasm_train_resume(this.tr, this.err)) throw this.fail('trainResume');
    return this.trainInfo();
  }

  trainRun(steps, onStep) {
    this.trainInfo();
    const prev = this.M.etTrainProgress;
    this.M.etTrainProgress = onStep ? (step, totalSteps, loss, lr, epoch, gradNorm, examplesPerS) =>
      onStep({ step, totalSteps, loss, lr, epoch, gradNorm, examplesPerS }) : null;
    try {
      if (this.M._et_wasm_train_run(this.tr, steps | 0, this.err)) throw this.fail('trainRun');
    } finally { this.M.etTrainProgress = prev; }
    const info = this.trainInfo();
    info.done = info.step >= info.totalSteps;
    return info;
  }

  trainCheckpoint() {
    this.trainInfo();
    const FS = this.M.FS, out = {};
    let latest;
    try { latest = dec.decode(FS.readFile(`${this.trOut}/latest`)).trim(); } catch { return null; }
    out.latest = enc.encode(latest + '\n');
    const walk = (abs, rel) => {
      for (const name of FS.readdir(abs)) {
        if (name === '.' || name === '..') continue;
        const a = `${abs}/${name}`, r = `${rel}/${name}`;
        if (FS.isDir(FS.stat(a).mode)) walk(a, r); else out[r] = FS.readFile(a);
      }
    };
    walk(`${this.trOut}/${latest}`, latest);
    return out;
  }

  trainEnd() {
    if (this.tr) this.M._et_wasm_train_end(this.tr);
    this.tr = 0;
    if (this.trDir) {
      const FS = this.M.FS;
      const rm = (p) => {
        const st = FS.stat(p);
        if (FS.isDir(st.mode)) { for (const n of FS.readdir(p)) if (n !== '.' && n !== '..') rm(`${p}/${n}`); FS.rmdir(p); }
        else FS.unlink(p);
      };
      try { rm(this.trDir); } catch { /* ignore */ }
      this.trDir = null;
    }
    this.info.layers = this.M._et_wasm_num_layers(this.h);
    return true;
  }

  /** Free the model (the core module stays cached for the next load). */
  dispose() {
    this._free();
    if (this.err) this.M._et_wasm_error_free(this.err);
    this.err = 0;
  }
}

const MODES = { dense: 0, bm25: 1, hybrid: 2 };

/** A search index (Embedtune.openIndex): dense, BM25 or hybrid ranking, the same C code as `embedtune search --index`. */
export class EmbedtuneIndex {
  constructor(et, h) {
    this.et = et; this.h = h;
    const M = et.M;
    this.size = M._et_wasm_index_ndocs(h);
    this.dim = M._et_wasm_index_dim(h);
    this.dtype = M.UTF8ToString(M._et_wasm_index_dtype(h));
    this.defaultMode = Object.keys(MODES)[M._et_wasm_index_mode(h)];
  }

  /** queries: string[] -> per query [{index, id, score, text?}] best first. opts: {k=10, mode ('dense' | 'bm25' |
   * 'hybrid'; default: retrieval.json's), fusion (a spec as `search --fusion`, e.g. 'rrf:k=60,alpha=0.5')}. */
  search(queries, opts = {}) {
    if (!this.h) throw new Error('this index was disposed');
    if (!Array.isArray(queries)) throw new TypeError('search: queries must be an array of strings');
    const et = this.et, M = et.M, k = Math.max(1, (opts.k ?? 10) | 0), nq = queries.length;
    const mode = opts.mode == null ? -1 : MODES[opts.mode];
    if (mode === undefined) throw new Error(`search: mode must be dense, bm25 or hybrid, got ${opts.mode}`);
    const blob = textBlob(queries, 'search');
    const [bp] = et.copyIn(blob.length ? blob : new Uint8Array(1));
    const [fp] = et.copyIn(opts.fusion ? enc.encode(String(opts.fusion).replace(/\0/g, '') + '\0') : null);
    const ip = M._malloc(Math.max(4, nq * k * 4)), sp = M._malloc(Math.max(4, nq * k * 4));
    try {
      if (M._et_wasm_index_search(this.h, bp, blob.length, nq, k, mode, fp, ip, sp, et.err)) throw et.fail('search');
      const idx = et.heapI32(ip, nq * k).slice(), sc = et.heapF32(sp, nq * k).slice(), out = [];
      for (let q = 0; q < nq; q++) {
        const r = [];
        for (let j = 0; j < k; j++) {
          const i = idx[q * k + j];
          if (i < 0) break;
          const hit = { index: i, id: M.UTF8ToString(M._et_wasm_index_id(this.h, i)), score: sc[q * k + j] };
          const tp = M._et_wasm_index_text(this.h, i);
          if (tp) hit.text = M.UTF8ToString(tp);
          r.push(hit);
        }
        out.push(r);
      }
      return out;
    } finally { M._free(bp); if (fp) M._free(fp); M._free(ip); M._free(sp); }
  }

  dispose() { if (this.h) this.et.M._et_wasm_index_free(this.h); this.h = 0; }
}

/** Stop the core's pthread pool workers (node: lets the process exit). */
export async function shutdown() {
  for (const p of cores.values()) {
    try { const M = await p; if (M.PThread) M.PThread.terminateAllThreads(); } catch { /* ignore */ }
  }
  cores.clear();
}

// ------------------------------------------------------------------ the worker's operations

const buffersOf = (files) => Object.values(files).map((b) => b.buffer);

/** Every operation EmbedtuneWorker sends to wasm/worker.mjs, one row each, in one place: the worker runs a message
 * by its row (workerHandle) and EmbedtuneWorker's methods are made from the rows (tests/wasm/worker_ops.test.mjs
 * fails on an operation called, declared or dispatched anywhere else). A row:
 *   args      the method's parameters in order, sent under these names; the worker calls Embedtune's method of the
 *             same name with them (an omitted argument arrives undefined, so Embedtune's defaults are the defaults)
 *   progress  what the last parameter is: 'count' an options object whose onProgress(done, total) -> true cancels;
 *             'stats' the same with onProgress(stats); 'step' a callback (stats) that cannot cancel. The callback
 *             stays in the page; the worker reports by messages {id, progress: true, done, total} / {..., stats}
 *             and cancels when the shared flag of init says so
 *   transfer  result -> the ArrayBuffers the worker moves (not copies) back
 *   after     (result, model) -> void, run in the worker before the result is posted
 *   run       (state {model, cancelFlag}, ...args) -> result: the worker's own handling instead of an Embedtune method
 *   model     false: runs without a loaded model
 *   client    false: no EmbedtuneWorker method of that name (init: the constructor; load: EmbedtuneWorker.load;
 *             shutdown: for a page that posts it itself) */
export const WORKER_OPS = Object.freeze({
  init: { args: ['flag'], model: false, client: false, run: (s, flag) => { s.cancelFlag = flag || null; return !!s.cancelFlag; } },
  load: {
    args: ['files', 'opts'], model: false, client: false,
    run: async (s, files, opts) => {
      if (s.model) s.model.dispose();
      s.model = null;
      s.model = await Embedtune.load(files, opts || {});
      return s.model.info;
    },
  },
  shutdown: { args: [], model: false, client: false, run: async (s) => { if (s.model) s.model.dispose(); s.model = null; await shutdown(); return true; } },
  encode: { args: ['texts', 'opts'], progress: 'count', transfer: (r) => [r.buffer] },
  setCorpus: { args: ['corpus', 'opts'], progress: 'count' },
  search: { args: ['query', 'k', 'mode'] },
  matchTerms: { args: ['query', 'texts'] },
  previewPairs: { args: ['bytes', 'name', 'maxRows'] },
  readPassages: { args: ['bytes', 'name'] },
  finetune: { args: ['data', 'name', 'args', 'opts'], progress: 'stats', transfer: (r) => buffersOf(r.files), after: (r, m) => { r.info = m.info; } },
  exportFiles: { args: ['opts'], transfer: buffersOf },
  tokenize: { args: ['text'] },
  trainBegin: { args: ['jsonl', 'cfg'] },
  trainResume: { args: ['files'] },
  trainRun: { args: ['steps', 'onStep'], progress: 'step' },
  trainCheckpoint: { args: [], transfer: (r) => (r ? buffersOf(r) : []) },
  trainEnd: { args: [] },
});

/** The worker's side (wasm/worker.mjs): runs one message {id, op, args, progress} by its WORKER_OPS row on state
 * {model, cancelFlag} and posts (post(message, transfer)) {id, result}, {id, error, code}, or progress messages
 * while it runs. A call whose id <= cancelFlag[0] is cancelled at its next progress check. */
export async function workerHandle(state, msg, post) {
  const { id, op, args = {} } = msg;
  const cancelled = () => !!state.cancelFlag && Atomics.load(state.cancelFlag, 0) >= id;
  try {
    const d = Object.prototype.hasOwnProperty.call(WORKER_OPS, op) ? WORKER_OPS[op] : null;
    if (!d) throw new Error(`worker: unknown op '${op}'`);
    if (d.model !== false && !state.model) throw new Error('no model loaded (call load first)');
    const a = d.args.map((name) => args[name]), last = a.length - 1;
    if (d.progress === 'count') {
      a[last] = { ...(a[last] || {}), onProgress: (done, total, step) => { if (msg.progress) post(step === undefined ? { id, progress: true, done, total } : { id, progress: true, done, total, step }); return cancelled(); } };
    } else if (d.progress === 'stats') {
      a[last] = { ...(a[last] || {}), onProgress: (stats) => { if (msg.progress) post({ id, progress: true, stats }); return cancelled(); } };
    } else if (d.progress === 'step') {
      a[last] = msg.progress ? (stats) => { post({ id, progress: true, stats }); return false; } : undefined;
    }
    const result = d.run ? await d.run(state, ...a) : state.model[op](...a);
    if (d.after) d.after(result, state.model);
    post({ id, result }, d.transfer && result ? d.transfer(result) : []);
  } catch (e) {
    post({ id, error: e && e.message ? e.message : String(e), code: e && e.code });
  }
}

// ------------------------------------------------------------------ worker client

/** The same API in a Worker (wasm/worker.mjs); all methods return Promises. In node it uses
 * worker_threads. opts: {threads, baseUrl, workerUrl}. */
export class EmbedtuneWorker {
  static async load(files, opts = {}) {
    const w = new EmbedtuneWorker(opts);
    await w._ready;
    const transfer = [];
    w.info = await w._call('load', { files, opts: { threads: opts.threads, baseUrl: opts.baseUrl, adapters: opts.adapters } }, transfer);
    w.dim = w.info.dim;
    return w;
  }

  constructor(opts = {}) {
    this.seq = 0;
    this.pending = new Map();
    const url = opts.workerUrl ? new URL(opts.workerUrl, import.meta.url) : new URL('./worker.mjs', import.meta.url);
    // cancel: a shared flag the worker reads at every progress check (needs SharedArrayBuffer)
    this.cancelFlag = typeof SharedArrayBuffer !== 'undefined' && canUseThreads() ? new Int32Array(new SharedArrayBuffer(4)) : null;
    this._ready = (async () => {
      if (isNode) {
        const { Worker } = await import('node:worker_threads');
        this.w = new Worker(url);
        this.w.on('message', (m) => this._onMessage(m));
        this.w.on('error', (e) => this._failAll(e));
      } else {
        this.w = new Worker(url, { type: 'module' });
        this.w.onmessage = (ev) => this._onMessage(ev.data);
        this.w.onerror = (ev) => this._failAll(new Error(ev.message || 'worker error'));
      }
      if (this.cancelFlag) this._call('init', { flag: this.cancelFlag });
    })();
  }

  _onMessage(m) {
    const p = this.pending.get(m.id);
    if (!p) return;
    if (m.progress) { if (p.onProgress) { if (m.stats) p.onProgress(m.stats); else if (m.step !== undefined) p.onProgress(m.done, m.total, m.step); else p.onProgress(m.done, m.total); } return; }
    this.pending.delete(m.id);
    if (m.error) { const e = new Error(m.error); e.code = m.code; p.reject(e); } else p.resolve(m.result);
  }

  _failAll(e) { for (const p of this.pending.values()) p.reject(e); this.pending.clear(); }

  _call(op, args, transfer = [], onProgress) {
    const id = ++this.seq;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, onProgress });
      this.w.postMessage({ id, op, args, progress: !!onProgress }, transfer);
    });
  }

  /** A WORKER_OPS row's method: the arguments go by the row's names, a progress callback stays here. */
  _op(op, a) {
    const d = WORKER_OPS[op], args = {}, last = d.args[d.args.length - 1];
    d.args.forEach((name, i) => { args[name] = a[i]; });
    let onProgress;
    if (d.progress === 'count' || d.progress === 'stats') {
      const { onProgress: f, ...o } = args[last] || {};
      onProgress = f;
      args[last] = o;
    } else if (d.progress === 'step') {
      onProgress = args[last];
      delete args[last];
    }
    return this._call(op, args, [], onProgress || undefined);
  }

  /** Cancel every call made so far (the running one stops at its next progress check and rejects with
   * code 8; queued ones reject the same way as soon as they check). false when the page cannot share
   * memory (not cross-origin isolated): use terminate(). */
  cancel() {
    if (!this.cancelFlag) return false;
    Atomics.store(this.cancelFlag, 0, this.seq);
    return true;
  }

  /** Stop the worker at once (cancels whatever runs in it; the model is gone). */
  async terminate() {
    this._failAll(new Error('cancelled: the worker was terminated'));
    if (this.w) await this.w.terminate();
  }
}

// EmbedtuneWorker's operation methods, one per WORKER_OPS row (client !== false): encode(texts, opts),
// search(query, k, mode), finetune(data, name, args, opts), trainRun(steps, onStep), ... (embedtune.d.ts).
for (const [op, d] of Object.entries(WORKER_OPS)) {
  if (d.client === false) continue;
  Object.defineProperty(EmbedtuneWorker.prototype, op, {
    value: { [op](...a) { return this._op(op, a); } }[op], writable: true, configurable: true, enumerable: false,
  });
}
