// ui.mjs - the page's small helpers: DOM lookup and elements (user content only ever as textContent, never as
// HTML), status lines, and number / time / size formats (pure; node unit tests in web/tests/unit.test.mjs).
export const $ = (id) => document.getElementById(id);

export function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text != null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}
export function setStatus(id, text, kind) {
  const e = $(id);
  e.textContent = text;
  e.className = 'status' + (kind ? ' ' + kind : '');
}
export const fmt = (x, d = 4) => (x == null || Number.isNaN(x) ? '–' : Number(x).toFixed(d));
export function fmtTime(s) {
  if (!Number.isFinite(s)) return '–';
  s = Math.max(0, Math.round(s));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  return h ? `${h} h ${m} min` : m ? `${m} min ${r} s` : `${r} s`;
}
export function fmtBytes(n) { return n > 1 << 20 ? `${(n / (1 << 20)).toFixed(1)} MB` : n > 1024 ? `${(n / 1024).toFixed(1)} KB` : `${n} B`; }
