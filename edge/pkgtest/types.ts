// types.ts - `deno check` of the package's TypeScript types (embedtune.d.ts) from a consumer's side.
import { Embedtune, type IndexHit, type ModelFiles } from 'embedtune';

export async function firstHit(files: ModelFiles, index: Uint8Array, q: string): Promise<IndexHit | undefined> {
  const et: Embedtune = await Embedtune.load(files, { threads: 1 });
  const v: Float32Array = et.encode([q], { batch: 8 });
  if (v.length !== et.info.dim) throw new Error('dim');
  return et.openIndex(index).search([q], { k: 1, mode: 'hybrid' })[0][0];
}
