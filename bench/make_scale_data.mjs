#!/usr/bin/env node
// make_scale_data.mjs - a synthetic but realistic pairs file and corpus file at scale, from the machine's own
// Debian manual pages (/usr/share/man/man[1-8], English), for the page's scale test and bench (issue 14 item 3).
//   node bench/make_scale_data.mjs OUT_DIR PAIRS PASSAGES
// writes OUT_DIR/pairs.jsonl ({"id","query","passage"}: PAIRS rows) and OUT_DIR/corpus.txt (PASSAGES passages,
// one per line, none of them a pairs row's passage). A paragraph of a man page (troff requests and font escapes
// removed, 25-300 words) becomes a pair the inverse-cloze way: its first sentence (4-30 words) is the query and
// the rest of the paragraph the passage; the other paragraphs fill the corpus. Files are read in sorted order,
// so the output depends only on the installed pages. Prints the counts; exits 1 if there is not enough text.
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';

const [out, nPairsArg, nPassArg] = process.argv.slice(2);
if (!out || !nPairsArg || !nPassArg) { console.error('usage: make_scale_data.mjs OUT_DIR PAIRS PASSAGES'); process.exit(2); }
const nPairs = +nPairsArg, nPass = +nPassArg;
const ROOT = process.env.ET_MAN_ROOT || '/usr/share/man';

function files() {
  const all = [];
  for (const d of fs.readdirSync(ROOT).filter((x) => /^man[1-8]$/.test(x)).sort()) {
    for (const f of fs.readdirSync(path.join(ROOT, d)).sort()) if (f.endsWith('.gz')) all.push(path.join(ROOT, d, f));
  }
  return all;
}

/** troff source -> paragraphs of plain text */
export function paragraphs(src) {
  const out = [];
  let cur = [];
  const flush = () => { const t = cur.join(' ').replace(/\s+/g, ' ').trim(); if (t) out.push(t); cur = []; };
  for (let line of src.split('\n')) {
    if (line.startsWith('.\\"') || line.startsWith("'\\\"")) continue;
    if (line.startsWith('.') || line.startsWith("'")) {
      const m = /^[.'](\S+)\s*(.*)$/.exec(line);
      const req = m ? m[1] : '';
      if (/^(PP|P|LP|TP|IP|SH|SS|HP|sp|br|RS|RE|nf|fi|TH|EX|EE)$/.test(req)) { flush(); continue; }
      if (/^(B|I|BR|IR|RB|RI|BI|IB|SM|SB)$/.test(req) && m[2]) line = m[2].replace(/"/g, '');
      else continue;
    }
    line = line.replace(/\\f(\(..|\[[^\]]*\]|.)/g, '').replace(/\\\((em|en)/g, '-').replace(/\\\(..|\\\[[^\]]*\]/g, '')
      .replace(/\\\*(\(..|\[[^\]]*\]|.)/g, '').replace(/\\[-e]/g, (x) => (x === '\\-' ? '-' : '\\')).replace(/\\[&|^%~ ]/g, ' ')
      .replace(/\\s[-+]?\d/g, '').replace(/\\./g, '');
    if (!line.trim()) { flush(); continue; }
    cur.push(line);
  }
  flush();
  return out;
}

const words = (t) => t.split(/\s+/).filter(Boolean).length;
const pairs = [], corpus = [], seen = new Set();
for (const f of files()) {
  if (pairs.length >= nPairs && corpus.length >= nPass) break;
  let src;
  try { src = zlib.gunzipSync(fs.readFileSync(f)).toString('utf8'); } catch { continue; }
  if (src.startsWith('.so ')) continue; // a link to another page
  const name = path.basename(f).replace(/\.gz$/, '');
  for (const p of paragraphs(src)) {
    const w = words(p);
    if (w < 25 || w > 300 || seen.has(p) || /[\x00-\x08]/.test(p)) continue;
    seen.add(p);
    const m = /^(.{20,240}?[.?!:])\s+(\S.*)$/.exec(p);
    if (pairs.length < nPairs && m && words(m[1]) >= 4 && words(m[1]) <= 30 && words(m[2]) >= 15) {
      pairs.push({ id: `${name}#${pairs.length}`, query: m[1], passage: m[2] });
    } else if (corpus.length < nPass) corpus.push(p);
  }
}
if (pairs.length < nPairs || corpus.length < nPass) {
  console.error(`make_scale_data: only ${pairs.length} pairs and ${corpus.length} passages in ${ROOT}`);
  process.exit(1);
}
fs.mkdirSync(out, { recursive: true });
fs.writeFileSync(path.join(out, 'pairs.jsonl'), pairs.map((r) => JSON.stringify(r)).join('\n') + '\n');
fs.writeFileSync(path.join(out, 'corpus.txt'), corpus.join('\n') + '\n');
console.log(JSON.stringify({ pairs: pairs.length, passages: corpus.length, bytes: fs.statSync(path.join(out, 'pairs.jsonl')).size + fs.statSync(path.join(out, 'corpus.txt')).size }));
