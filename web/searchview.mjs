// searchview.mjs - the search results: a title line + a two-line snippet (web/snippet.mjs cuts them) with the words
// BM25 matched marked (the C token rule, et_bm25_match_spans, through the worker) and "show more"; and the search's
// vectors (Vector size: the Matryoshka cut, search --dim; int8: search --int8). vectorsText and dimChoices are pure
// (node unit tests). Ranking itself is the C hybrid engine (src/hybrid.h, as `embedtune search --mode`).
import { $, el } from './ui.mjs';
import { snippetOf } from './snippet.mjs';

// Ranking is the C hybrid engine (src/hybrid.h, as `embedtune search --mode`). Display: a title line + a
// two-line snippet (the window of the passage with the most query words) with the query's words marked,
// and "show more" for the whole passage. Which words match is BM25's token rule, asked of the C library
// (src/bm25.h et_bm25_match_spans through the worker), so the marks are exactly the words BM25 scored.
/** text -> DOM nodes with the spans in <mark> (text nodes only: user content never becomes HTML) */
export function marked(text, hits) {
  const out = [];
  let at = 0;
  for (const [a, b] of hits) {
    if (a < at) continue;
    if (a > at) out.push(document.createTextNode(text.slice(at, a)));
    out.push(el('mark', text.slice(a, b)));
    at = b;
  }
  if (at < text.length) out.push(document.createTextNode(text.slice(at)));
  return out;
}

export function hitItem(h, t, hits, mode) {
  const li = el('li'), sn = snippetOf(t, hits);
  const head = el('div', null, 'hit-title');
  head.append(el('span', `${mode === 'dense' ? h.score.toFixed(3) : h.score.toFixed(mode === 'bm25' ? 2 : 3)}`, 'score'), ...marked(sn.title, sn.titleHits));
  li.append(head);
  if (sn.snippet) {
    const body = el('div', null, 'hit-snippet');
    body.append(...marked(sn.snippet, sn.snippetHits));
    li.append(body);
    if (sn.more) {
      const b = el('button', 'show more', 'more');
      b.type = 'button';
      b.setAttribute('aria-expanded', 'false');
      b.addEventListener('click', () => {
        const open = b.getAttribute('aria-expanded') !== 'true';
        body.replaceChildren(...(open ? marked(t, hits) : marked(sn.snippet, sn.snippetHits)));
        body.classList.toggle('full', open);
        b.textContent = open ? 'show less' : 'show more';
        b.setAttribute('aria-expanded', String(open));
      });
      li.append(b);
    }
  }
  return li;
}

/** The search's vectors: {dim: the Matryoshka cut (0 = full; search --dim), int8: int8 inference (search --int8)}. */
export const searchVectors = () => ({ dim: +$('search-dim').value || 0, int8: $('search-int8').checked });
/** ", 64-value vectors, int8" for {dim, int8} ('' for full fp32 vectors) */
export const vectorsText = (c) => (c.dim || c.int8 ? `, ${c.dim ? `${c.dim}-value vectors` : 'full vectors'}${c.int8 ? ', int8' : ''}` : '');

/** The vector sizes offered for a model of dim values: full (0), then halves down to 16. */
export function dimChoices(dim) {
  const out = [0];
  for (let d = dim >> 1; d >= 16; d >>= 1) out.push(d);
  return out;
}

/** Fill the Vector size picker for a model of dim values (full selected). */
export function fillDims(dim) {
  const sel = $('search-dim');
  sel.replaceChildren(...dimChoices(dim).map((d) => { const o = el('option', d ? String(d) : `full (${dim})`); o.value = String(d); return o; }));
  sel.value = '0';
}
