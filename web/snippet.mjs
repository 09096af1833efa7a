// snippet.mjs - what a search result shows (pure functions; no DOM, no wasm: node unit tests in
// web/tests/unit.test.mjs). Which words of a passage match the query is NOT decided here: the C library's
// BM25 token rule gives their spans (src/bm25.h et_bm25_match_spans, Embedtune.matchTerms); this file only
// cuts a title and a two-line snippet and keeps the spans that fall inside each.
export const TITLE_MAX = 90, SNIPPET_CHARS = 220;

/** hits [[a, b), ...] (sorted) -> those inside [from, to), shifted by -from */
export const hitsIn = (hits, from, to) => hits.filter(([a, b]) => a >= from && b <= to).map(([a, b]) => [a - from, b - from]);

/** The text a result shows: whitespace runs collapsed to one space, trimmed (the term spans are asked on this). */
export const displayText = (text) => text.replace(/\s+/g, ' ').trim();

/** t: displayText(passage), hits: its query-word spans [[a, b), ...] (sorted) ->
 * {title, titleHits, snippet, snippetHits, more}: title = the first sentence (cut at TITLE_MAX, at a word),
 * snippet = the SNIPPET_CHARS window of the rest with the most hits, cut at words, with "…" where text was
 * left out; *Hits: the spans inside each, relative to it. Pure (node unit tests: web/tests/unit.test.mjs). */
export function snippetOf(t, hits) {
  let cut = t.search(/[.!?](\s|$)/);
  cut = cut < 0 ? t.length : cut + 1;
  let titleEnd = Math.min(cut, TITLE_MAX), restStart = titleEnd, ell = '';
  if (cut > TITLE_MAX) {
    const sp = t.lastIndexOf(' ', TITLE_MAX);
    if (sp > 40) titleEnd = restStart = sp;
    ell = ' …';
  }
  while (restStart < t.length && t[restStart] === ' ') restStart++;
  const title = t.slice(0, titleEnd) + ell, titleHits = hitsIn(hits, 0, titleEnd);
  const rest = t.slice(restStart), restHits = hitsIn(hits, restStart, t.length);
  if (rest.length <= SNIPPET_CHARS) return { title, titleHits, snippet: rest, snippetHits: restHits, more: false };
  let best = 0, bestN = -1;
  for (const [a0] of restHits) { // windows that start at a hit (a little before it)
    const s0 = Math.max(0, a0 - 30);
    const n = restHits.filter(([a, b]) => a >= s0 && b <= s0 + SNIPPET_CHARS).length;
    if (n > bestN) { bestN = n; best = s0; }
  }
  let a = best, b = Math.min(rest.length, best + SNIPPET_CHARS);
  if (a > 0) { const sp = rest.indexOf(' ', a); a = sp >= 0 && sp < a + 20 ? sp + 1 : a; }
  if (b < rest.length) { const sp = rest.lastIndexOf(' ', b); b = sp > a + 40 ? sp : b; }
  const pre = a > 0 ? '… ' : '';
  return { title, titleHits, snippet: `${pre}${rest.slice(a, b)}${b < rest.length ? ' …' : ''}`,
    snippetHits: hitsIn(restHits, a, b).map(([x, y]) => [x + pre.length, y + pre.length]), more: true };
}

