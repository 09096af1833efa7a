// use.mjs - run from an empty project where the packed "embedtune" tarball was installed (tools/test_package.sh):
//   node use.mjs ROOT  |  deno run --allow-read --allow-env use.mjs ROOT
// Loads models/compact through the package's bare import, encodes, compares with ROOT/expected.jsonl (the native
// CLI's `encode` of the same texts, written by the test) within 1e-5, and searches an index file. Prints "PASS".
import { Embedtune } from 'embedtune';

const isDeno = typeof Deno !== 'undefined';
const root = isDeno ? Deno.args[0] : process.argv[2];
const readBytes = async (p) => (isDeno ? await Deno.readFile(p) : (await import('node:fs')).readFileSync(p));
const readText = async (p) => new TextDecoder().decode(await readBytes(p));
const m = `${root}/models/compact`;
const files = {
  config: await readBytes(`${m}/config.json`), vocab: await readBytes(`${m}/vocab.txt`), safetensors: await readBytes(`${m}/model.safetensors`),
  modules: await readBytes(`${m}/modules.json`), pooling: await readBytes(`${m}/1_Pooling/config.json`),
};
const et = await Embedtune.load(files, { threads: 1 });
const texts = (await readText(`${root}/texts.txt`)).trimEnd().split('\n');
const ref = (await readText(`${root}/expected.jsonl`)).trim().split('\n').map((l) => JSON.parse(l).embedding);
const emb = et.encode(texts);
let maxd = 0;
for (let i = 0; i < texts.length; i++) for (let j = 0; j < et.dim; j++) maxd = Math.max(maxd, Math.abs(emb[i * et.dim + j] - ref[i][j]));
if (!(maxd <= 1e-5)) throw new Error(`embeddings differ from the native CLI by ${maxd}`);
const ix = et.openIndex(await readBytes(`${root}/index.etix`));
const hits = ix.search(['text editor for the terminal'], { k: 3, mode: 'hybrid' })[0];
const want = (await readText(`${root}/search.jsonl`)).trim();
const got = JSON.parse(want).results.map((h) => h.id).join(',');
if (hits.map((h) => h.id).join(',') !== got) throw new Error(`search: ${hits.map((h) => h.id)} vs native ${got}`);
console.log(`PASS ${isDeno ? 'deno' : 'node'}: ${texts.length} embeddings within ${maxd.toExponential(2)} of native; search ${got}`);
if (!isDeno) (await import('embedtune')).shutdown();
