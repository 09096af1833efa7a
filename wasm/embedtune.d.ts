// embedtune.d.ts - TypeScript types of embedtune.mjs (the npm package "embedtune"; wasm/README.md documents it).

/** Bytes of a file: an ArrayBuffer, a typed array, or text. */
export type Bytes = ArrayBuffer | ArrayBufferView | string;

/** The files of a sentence-transformers model folder (the first three are required). */
export interface ModelFiles {
  config: Bytes;            // config.json
  vocab?: Bytes;            // vocab.txt (WordPiece); without it one of the tokenizer files below
  safetensors: Bytes;       // model.safetensors (F32, F16 or BF16)
  modules?: Bytes;          // modules.json
  pooling?: Bytes;          // 1_Pooling/config.json
  sbertConfig?: Bytes;      // sentence_bert_config.json
  tokenizerConfig?: Bytes;  // tokenizer_config.json
  tokenizerJson?: Bytes;    // tokenizer.json (WordPiece, SentencePiece Unigram or byte-level BPE)
  spmModel?: Bytes;         // sentencepiece.bpe.model (XLM-R)
  spieceModel?: Bytes;      // spiece.model
  sentencepieceModel?: Bytes; // sentencepiece.model
  vocabJson?: Bytes;        // vocab.json (byte-level BPE, with merges)
  merges?: Bytes;           // merges.txt
}

/** ModelFiles keys of the tokenizer files a folder may have instead of vocab.txt -> their file names */
export const TOKENIZER_PATHS: Record<string, string>;

export interface LoadOptions {
  /** threads (default: defaultThreads()); > 1 needs SharedArrayBuffer (canUseThreads()) */
  threads?: number;
  /** where embedtune-core*.{mjs,wasm} are (default: next to embedtune.mjs) */
  baseUrl?: string | URL;
  /** PEFT LoRA adapter folders merged into the model, in order (as `embedtune encode --adapter DIR`) */
  adapters?: AdapterFiles[];
}

/** The files of a PEFT LoRA adapter folder (ADAPTER_FILES). */
export interface AdapterFiles {
  'adapter_config.json': Bytes;
  'adapter_model.safetensors': Bytes;
}
/** An adapter folder as adapterInfo() reads it (its adapter_config.json, for display; the C side checks it) */
export interface AdapterInfo { r?: number; alpha?: number; targets?: string[] | string; base?: string; bytes: number }
export const ADAPTER_FILES: readonly string[];
export function adapterInfo(files: Record<string, Bytes>): AdapterInfo;

export interface ModelInfo {
  dim: number; maxLength: number; threads: number; vocabSize: number; layers: number;
  pooling: 'mean' | 'cls'; normalize: boolean; simd: string;
  /** the LoRA adapters merged into the model (load's adapters, a finetune --lora run) */
  adapters: AdapterInfo[];
}

export interface EncodeOptions {
  batch?: number;
  maxLength?: number;
  /** called after each batch; return true to cancel */
  onProgress?: (done: number, total: number) => boolean | void;
}

export interface Hit { index: number; score: number; text?: string }
export interface IndexHit { index: number; id: string; score: number; text?: string }
export type RetrievalMode = 'dense' | 'bm25' | 'hybrid';

export interface IndexSearchOptions {
  /** results per query (default 10) */
  k?: number;
  /** default: the retrieval.json given to openIndex, else dense */
  mode?: RetrievalMode;
  /** a fusion as `embedtune search --fusion`, e.g. "convex:alpha=0.3", "rrf:k=60,alpha=0.5" */
  fusion?: string;
}

/** A search index written by `embedtune index` (Embedtune.openIndex). */
export class EmbedtuneIndex {
  readonly size: number;
  readonly dim: number;
  readonly dtype: 'int8' | 'f16' | 'none';
  readonly defaultMode: RetrievalMode;
  /** per query, the hits best first */
  search(queries: string[], opts?: IndexSearchOptions): IndexHit[][];
  dispose(): void;
}

/** The engine on the calling thread (node, Deno, a Worker; on a page's main thread it blocks while encoding). */
export class Embedtune {
  static load(files: ModelFiles, opts?: LoadOptions): Promise<Embedtune>;
  /** on a core the caller instantiated (e.g. a Cloudflare Worker: createEmbedtune with instantiateWasm) */
  static fromCore(core: unknown, files: ModelFiles, threads?: number): Embedtune;
  readonly dim: number;
  readonly maxLength: number;
  readonly threads: number;
  readonly info: ModelInfo;
  /** Float32Array [texts.length * dim], row i = text i */
  encode(texts: string[], opts?: EncodeOptions): Float32Array;
  /** dim: cut each embedding to its first dim values and re-normalise (search --dim); int8: int8 inference (search --int8) */
  /** onProgress(done, total, step): step 'encode' (texts) then 'BM25 index' (docs); return true to cancel */
  setCorpus(corpus: string[] | Float32Array, opts?: Omit<EncodeOptions, 'onProgress'> & { embeddings?: Float32Array; dim?: number; int8?: boolean;
    onProgress?: (done: number, total: number, step: 'encode' | 'BM25 index') => boolean | void }): number;
  search(query: string | Float32Array, k?: number, mode?: 'dense' | 'bm25'): Hit[];
  /** bytes of an index file; retrieval: the model folder's retrieval.json */
  openIndex(index: Bytes, retrieval?: Bytes): EmbedtuneIndex;
  exportFiles(opts?: { dtype?: 'f32' | 'f16' | 'bf16' }): Record<string, Uint8Array>;
  tokenize(text: string): string[];
  previewPairs(bytes: Bytes, name: string, maxRows?: number): unknown;
  finetune(data: Bytes, name: string, args?: string[], opts?: { onProgress?: (stats: Record<string, unknown>) => boolean | void }): unknown;
  dispose(): void;
}

/** The same API in a Web Worker / node worker_threads Worker; every method returns a Promise. Its operation methods
 * are the rows of WORKER_OPS (embedtune.mjs); tests/wasm/worker_ops.test.mjs checks this list against them. */
export class EmbedtuneWorker {
  static load(files: ModelFiles, opts?: LoadOptions & { workerUrl?: string | URL }): Promise<EmbedtuneWorker>;
  readonly info: ModelInfo;
  encode(texts: string[], opts?: EncodeOptions): Promise<Float32Array>;
  setCorpus(corpus: string[] | Float32Array, opts?: Omit<EncodeOptions, 'onProgress'> & { dim?: number; int8?: boolean;
    onProgress?: (done: number, total: number, step: 'encode' | 'BM25 index') => boolean | void }): Promise<number>;
  search(query: string | Float32Array, k?: number, mode?: RetrievalMode): Promise<Hit[]>;
  /** for text i, the [start, end) string indices of its words that are BM25 terms of the query */
  matchTerms(query: string, texts: string[]): Promise<[number, number][][]>;
  previewPairs(bytes: Bytes, name: string, maxRows?: number): Promise<unknown>;
  readPassages(bytes: Bytes, name: string): Promise<string[]>;
  /** the result also carries info: the tuned model's ModelInfo */
  finetune(data: Bytes, name: string, args?: string[], opts?: { corpus?: { bytes: Bytes; name: string }; onProgress?: (stats: Record<string, unknown>) => boolean | void }): Promise<unknown>;
  exportFiles(opts?: { dtype?: 'f32' | 'f16' | 'bf16' }): Promise<Record<string, Uint8Array>>;
  tokenize(text: string): Promise<string[]>;
  trainBegin(jsonl: Bytes, cfg?: Record<string, unknown>): Promise<{ step: number; totalSteps: number; examples: number; negatives: number }>;
  trainResume(files: Record<string, Uint8Array>): Promise<{ step: number; totalSteps: number; examples: number; negatives: number }>;
  /** onStep gets every step's stats; it cannot stop the chunk (call with small steps to stay responsive) */
  trainRun(steps: number, onStep?: (stats: Record<string, unknown>) => void): Promise<{ step: number; totalSteps: number; done: boolean }>;
  trainCheckpoint(): Promise<Record<string, Uint8Array> | null>;
  trainEnd(): Promise<boolean>;
  /** false when the page cannot share memory (not cross-origin isolated): use terminate() */
  cancel(): boolean;
  terminate(): Promise<void>;
}

export function defaultThreads(): Promise<number>;
export function canUseThreads(): boolean;
export function loadCore(opts?: LoadOptions): Promise<{ M: unknown; threads: number }>;
export function filesFromFolder(listing: Record<string, Bytes>): ModelFiles;
export function shutdown(): Promise<void>;
export const FINETUNE_PHASES: readonly string[];

/** The operations EmbedtuneWorker sends to wasm/worker.mjs, one row each (embedtune.mjs documents a row's fields). */
export const WORKER_OPS: Readonly<Record<string, {
  args: readonly string[]; progress?: 'count' | 'stats' | 'step'; model?: false; client?: false;
}>>;
/** The worker's side: runs one message {id, op, args, progress} on state {model, cancelFlag} by WORKER_OPS. */
export function workerHandle(state: { model: Embedtune | null; cancelFlag: Int32Array | null },
  msg: { id: number; op: string; args?: Record<string, unknown>; progress?: boolean },
  post: (message: unknown, transfer?: Transferable[]) => void): Promise<void>;
