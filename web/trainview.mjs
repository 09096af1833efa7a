// trainview.mjs - the training view: the settings (empty fields are left to `embedtune finetune`'s automatic
// defaults) as finetune options, the note on the chosen loss, and the run's progress: the phase list (each past
// phase's time, the running one's ETA), the progress bar, the status line and the loss chart. finetuneArgs,
// phaseLabel and checkTrainable are pure (node unit tests).
import { $, el, fmt, fmtTime } from './ui.mjs';
import { drawChart } from './chart.mjs';

// Empty fields are left to `embedtune finetune`'s own (automatic) defaults.
export const OPTS = [ // [input id, option, kind]
  ['opt-epochs', '--epochs', 'int'], ['opt-lr', '--lr', 'num'], ['opt-batch', '--batch', 'int'], ['opt-maxlen', '--max-len', 'int'],
  ['opt-seed', '--seed', 'int'], ['opt-negatives', '--negatives', 'int'], ['opt-refresh', '--refresh-every', 'str'],
  ['opt-mine', '--mine-range', 'str'], ['opt-warmup', '--warmup', 'str'], ['opt-tau', '--tau', 'num'], ['opt-dev', '--dev', 'str'],
  ['opt-adapt-pairs', '--adapt-pairs', 'int'], ['opt-mem', '--mem-budget', 'int'],
];
/** "Adapter only (LoRA)": finetune --lora R and its options (given only when filled; empty rank: 8). */
export const LORA_OPTS = [['opt-lora-alpha', '--lora-alpha'], ['opt-lora-dropout', '--lora-dropout']];
export const LORA_RANK = '8';
/** The adapted Linear layers offered (finetune --lora-targets short names) and the default set (PEFT's for BERT). */
export const LORA_TARGETS = ['q', 'k', 'v', 'o', 'ffn_in', 'ffn_out'], LORA_DEFAULT_TARGETS = ['q', 'v'];
/** The settings fields' values {loss, moe, experts, bm25, freezeEmb, lora, loraTargets, [field id]: text}. */
export function settings() {
  const s = { loss: $('opt-loss').value, moe: $('opt-moe').checked, experts: +$('opt-experts').value | 0, bm25: $('opt-bm25').checked,
    freezeEmb: $('opt-freeze-emb').checked, lora: $('opt-lora').checked, loraTargets: LORA_TARGETS.filter((t) => $(`opt-lora-t-${t}`).checked) };
  for (const [id] of [...OPTS, ...LORA_OPTS, ['opt-lora-r']]) s[id] = $(id).value.trim();
  return s;
}
/** settings() -> the `finetune` options (the filled fields only, in OPTS order). */
export function finetuneArgs(s) {
  const a = ['--loss', s.loss];
  for (const [id, opt] of OPTS) if (s[id] !== '') a.push(opt, s[id]);
  if (s.moe) a.push('--moe-experts', String(s.experts));
  if (!s.bm25) a.push('--no-bm25');
  if (s.freezeEmb && !s.lora) a.push('--freeze-embeddings'); // LoRA freezes the whole base (finetune refuses both)
  if (s.lora) { // a LoRA adapter only; --lora-base: the name adapter_config.json gives the base (s.loraBase, set by the page)
    a.push('--lora', s['opt-lora-r'] || LORA_RANK);
    for (const [id, opt] of LORA_OPTS) if (s[id]) a.push(opt, s[id]);
    if (s.loraTargets.join(',') !== LORA_DEFAULT_TARGETS.join(',')) a.push('--lora-targets', s.loraTargets.join(','));
    if (s.loraBase) a.push('--lora-base', s.loraBase);
  }
  return a;
}
/** What keeps the settings from a run ('' when none): a LoRA adapter needs at least one layer. */
export const checkSettings = (s) => (s.lora && !s.loraTargets.length ? 'Adapter only (LoRA): choose at least one layer for the adapters' : '');
export function updateSettingsNote() {
  const loss = $('opt-loss').value;
  const notes = {
    infonce: 'InfoNCE: each query must pick its passage among the batch and its ANCE-mined hard negatives (the starting model\'s ranks 2..100 minus its positives, re-mined with the model being trained 4 times per epoch).',
    clp: 'CLP: InfoNCE with ANCE-mined negatives, each with the query it answers, plus a penalty that keeps those negatives close to their own query.',
    mse: 'MSE trains the cosine toward the label; rows without labels get label 1 plus hard negatives (label 0) ranked by BM25.',
  };
  $('settings-note').textContent = notes[loss] || 'Soft labels come from the experts: BM25 and the file\'s own score columns; rows without labels get label 1 plus BM25-ranked negatives with label 0.';
}

export const PHASE_TEXT = { load: 'Loading the model', parse: 'Reading and checking the pairs, held-out split', eval_before: 'Evaluating the starting model (dense + BM25)',
  mine: 'Mining hard negatives (ANCE)', experts: 'Scoring with the experts (BM25)', train: 'Training', refresh: 'Re-mining negatives with the current model',
  eval_after: 'Evaluating the tuned model', done: 'Done' };

/** A new run's progress record: phases seen, loss points, each phase's times {start, end?, eta?, step?} (seconds),
 * each named step's {start, end?, done, total, unit} under 'phase/step' (steps). */
export function newRun(now = performance.now()) {
  return { t0: now, phase: null, seen: new Set(), times: {}, phases: [], loss: [], totalSteps: 0, steps: {}, stepKey: null };
}

/** One report's step (et_ft_progress.step: 'encode eval corpus', 'BM25 index', 'fusion cross-validation', ...): a new
 * phase or step restarts the step's clock and count (done / total restart at each step), its times are kept in
 * run.steps; returns the step's ETA in seconds from its rate so far (NaN before a rate is known). */
export function stepProgress(st, run, now) {
  const key = `${st.phase}/${st.step || ''}`;
  if (key !== run.stepKey) {
    if (run.steps[run.stepKey]) run.steps[run.stepKey].end = now / 1000;
    run.stepKey = key; run.stepT0 = now; run.stepDone0 = st.done;
    if (st.step) run.steps[key] = { start: now / 1000 };
  }
  if (run.steps[key]) Object.assign(run.steps[key], { done: st.done, total: st.total, unit: st.unit });
  const n = st.done - run.stepDone0;
  return st.total > 0 && n > 0 ? (now - run.stepT0) / 1000 / n * (st.total - st.done) : NaN;
}

/** The phase list, every phase not yet reached. */
export function resetPhaseList() {
  $('phase-list').replaceChildren(...Object.keys(PHASE_TEXT).filter((p) => p !== 'done').map((p) => { const li = el('li', PHASE_TEXT[p]); li.dataset.phase = p; return li; }));
}

/** The phase list's entry for a phase: its text, then "12 s" when past, "ETA 1 min 3 s" while it runs. */
export function phaseLabel(phase, run) {
  const t = run.times[phase];
  if (!t) return PHASE_TEXT[phase] || phase;
  return `${PHASE_TEXT[phase] || phase} · ${t.end != null ? fmtTime(t.end - t.start) : `${t.step ? `${t.step} · ` : ''}${t.eta != null ? `ETA ${fmtTime(t.eta)}` : 'running'}`}`;
}

/** One progress report of the run (et_ft_progress through the worker): the phase list, bar, status, chart. */
export function onRunProgress(st, run) {
  const now = performance.now();
  if (st.phase !== run.phase) {
    if (run.phase && run.times[run.phase]) run.times[run.phase].end = now / 1000;
    run.phase = st.phase; run.phases.push(st.phase);
    if (!run.times[st.phase]) run.times[st.phase] = { start: now / 1000 };
    else { run.times[st.phase].start = now / 1000 - (run.times[st.phase].end - run.times[st.phase].start); delete run.times[st.phase].end; }
  }
  document.body.dataset.phase = st.phase;
  const li = $('phase-list');
  run.seen.add(st.phase);
  let text = PHASE_TEXT[st.phase] || st.phase;
  const eta = stepProgress(st, run, now), t = run.times[st.phase];
  if (t.step !== (st.step || undefined)) { t.step = st.step || undefined; delete t.eta; }
  if (st.step) text += ` · ${st.step}`;
  if (st.total > 0) {
    $('train-progress').value = st.done / st.total;
    const unit = st.unit || (st.phase === 'train' ? 'steps' : 'texts');
    if (Number.isFinite(eta)) t.eta = eta;
    text += `: ${st.done} / ${st.total} ${unit} · ETA ${fmtTime(eta)}`;
  } else $('train-progress').removeAttribute('value');
  if (now - (run.lastList || 0) > 250 || st.phase === 'done') { // the list: each phase with its time or ETA
    run.lastList = now;
    for (const x of li.children) {
      const p = x.dataset.phase;
      x.className = p === st.phase ? 'current' : run.seen.has(p) ? 'past' : '';
      x.textContent = phaseLabel(p, run);
    }
  }
  if (st.phase === 'train' && Number.isFinite(st.loss)) {
    run.loss.push({ step: st.done, loss: st.loss, epoch: st.epoch });
    run.totalSteps = st.total;
    text += ` · epoch ${st.epoch + 1} · loss ${fmt(st.loss)} · lr ${st.lr.toExponential(2)} · ${st.examplesPerS.toFixed(1)} queries/s`;
    if (now - (run.lastDraw || 0) > 100 || st.done === st.total) { run.lastDraw = now; drawChart($('loss-chart'), run.loss, run.totalSteps); }
  }
  $('train-eta').textContent = `${text} · elapsed ${fmtTime((now - run.t0) / 1000)}`;
}

export function checkTrainable(preview) {
  if (!preview || !preview.rows) return 'load a pairs file first';
  if (preview.rows - preview.test < 2) return 'at least 2 training rows are needed (after the held-out split)';
  return null;
}
