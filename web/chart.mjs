// chart.mjs - the loss chart: a hand-drawn canvas of the loss per optimizer step (light) and its moving average
// (dark). chartRange (the axes) is pure (node unit test).

/** The axes for loss points h [{step, loss}] of a run of totalSteps: {total (>= 2), lo, hi} with 5 % padding, lo
 * never below 0 for a non-negative loss, a flat loss widened to +-0.5. */
export function chartRange(h, totalSteps) {
  const total = Math.max(totalSteps || (h.length ? h[h.length - 1].step : 0), 2);
  let lo = Infinity, hi = -Infinity;
  for (const p of h) { lo = Math.min(lo, p.loss); hi = Math.max(hi, p.loss); }
  if (hi - lo < 1e-6) { hi += 0.5; lo -= 0.5; }
  const pad = (hi - lo) * 0.05;
  lo = lo >= 0 ? Math.max(0, lo - pad) : lo - pad;
  hi += pad;
  return { total, lo, hi };
}

/** Draw the points h [{step, loss}] of a run of totalSteps on canvas cv. */
export function drawChart(cv, h, totalSteps) {
  const g = cv.getContext('2d');
  const W = cv.width, H = cv.height, L = 52, R = 12, T = 14, B = 30;
  g.clearRect(0, 0, W, H);
  g.font = '11px system-ui, sans-serif';
  g.fillStyle = '#5a6475';
  if (!h.length) { g.fillText('The training loss will appear here.', L, H / 2); return; }
  const { total, lo, hi } = chartRange(h, totalSteps);
  const x = (s) => L + (W - L - R) * (s - 1) / (total - 1), y = (v) => T + (H - T - B) * (1 - (v - lo) / (hi - lo));
  g.strokeStyle = '#d9dee7'; g.lineWidth = 1;
  for (let i = 0; i <= 4; i++) {
    const v = lo + (hi - lo) * i / 4, yy = Math.round(y(v)) + 0.5;
    g.beginPath(); g.moveTo(L, yy); g.lineTo(W - R, yy); g.stroke();
    g.fillText(v.toFixed(3), 4, yy + 4);
  }
  g.fillText('step 1', L, H - 10);
  const lbl = `${total}`; g.fillText(lbl, W - R - g.measureText(lbl).width, H - 10);
  g.fillText('optimizer step (light: loss, dark: moving average)', L + (W - L - R) / 2 - 120, H - 10);
  g.strokeStyle = '#9fb5e8'; g.beginPath();
  h.forEach((p, i) => (i ? g.lineTo(x(p.step), y(p.loss)) : g.moveTo(x(p.step), y(p.loss)))); g.stroke();
  g.strokeStyle = '#2456c7'; g.lineWidth = 2; g.beginPath();
  let ema = h[0].loss;
  h.forEach((p, i) => { ema = i ? 0.85 * ema + 0.15 * p.loss : p.loss; i ? g.lineTo(x(p.step), y(ema)) : g.moveTo(x(p.step), y(ema)); });
  g.stroke();
}
