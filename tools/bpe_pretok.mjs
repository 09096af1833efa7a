#!/usr/bin/env node
// Word counts of a corpus under Hugging Face's ByteLevel pre-tokenizer (Rust tokenizers 0.22 via npm
// @anush008/tokenizers): the training input of tools/gen_bpe_fixture.py's byte-level BPE trainer.
//
//   NODE_PATH=/path/node_modules node tools/bpe_pretok.mjs CORPUS.txt OUT.json
//
// CORPUS.txt: one text per line. OUT.json: {"byte-level word": count, ...}
import { readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";

const require = createRequire(process.env.NODE_PATH ? process.env.NODE_PATH + "/" : import.meta.url);
const { byteLevelPreTokenizer } = require("@anush008/tokenizers");

const [inPath, outPath] = process.argv.slice(2);
const pre = byteLevelPreTokenizer(false, true);
const counts = new Map();
for (const line of readFileSync(inPath, "utf8").split("\n")) {
    if (!line) continue;
    for (const [w] of pre.preTokenizeString(line)) counts.set(w, (counts.get(w) || 0) + 1);
}
writeFileSync(outPath, JSON.stringify(Object.fromEntries(counts)));
