#!/usr/bin/env node
// Hugging Face Rust tokenizers (npm @anush008/tokenizers: a native build of tokenizers 0.22) as a
// reference for tools/gen_spm_fixture.py.
//
//   node tools/spm_hf_ids.mjs TOKENIZER_JSON IN.json OUT.json
//
// IN.json: {"texts": [str, ...], "batch": {"max_len": M, "rows": [[i, j, ...], ...]}}
// OUT.json: {"ids": [[id, ...] per text, no special tokens],
//            "batch": [{"ids": [[...]], "mask": [[...]]} per row group: truncation M, padding to longest]}
// Set NODE_PATH (or install the package next to this file) so the import resolves.
import { readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";

const require = createRequire(process.env.NODE_PATH ? process.env.NODE_PATH + "/" : import.meta.url);
const { Tokenizer } = require("@anush008/tokenizers");

const [tjPath, inPath, outPath] = process.argv.slice(2);
const input = JSON.parse(readFileSync(inPath, "utf8"));
const tok = Tokenizer.fromFile(tjPath);
const ids = [];
for (const s of input.texts) {
    const e = await tok.encode(s, null, { addSpecialTokens: false });
    ids.push(Array.from(e.getIds()));
}
const batch = [];
if (input.batch) {
    const bt = Tokenizer.fromFile(tjPath);
    bt.setTruncation(input.batch.max_len);
    const pad = bt.tokenToId("<pad>");
    bt.setPadding({ padId: pad, padToken: "<pad>" }); // tokenizer.json "padding" is null, as on the Hub
    for (const row of input.batch.rows) {
        const enc = await bt.encodeBatch(row.map((i) => input.texts[i]));
        batch.push({ ids: enc.map((e) => Array.from(e.getIds())), mask: enc.map((e) => Array.from(e.getAttentionMask())) });
    }
}
writeFileSync(outPath, JSON.stringify({ ids, batch }));
