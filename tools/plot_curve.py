#!/usr/bin/env python3
"""Plot the training loss of `embedtune train --log FILE` (per-step JSONL: step, epoch, loss, lr, grad_norm, ...) to a PNG.

Raw per-step loss (light) + a moving average (dark) on the left axis, learning rate on the right axis. Several logs can
be overlaid (e.g. the GloVe-init vs random-init ablation): --log A.jsonl --label glove --log B.jsonl --label random.
Records may carry "phase" (default 1); a dotted vertical line marks where the phase changes.

Needs matplotlib (Debian: apt-get install -y python3-matplotlib; run with /usr/bin/python3).
Usage: tools/plot_curve.py --log models/compact/train_log.jsonl --out models/compact/training_curve.png
       [--label NAME] [--smooth 25] [--title TEXT]
"""
import argparse
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def read_log(path):
    steps, loss, lr, phases = [], [], [], []
    with open(path, encoding="utf-8") as f:
        for ln, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                r = json.loads(line)
            except json.JSONDecodeError as e:
                sys.exit(f"plot_curve: {path}:{ln}: bad JSON ({e})")
            if "step" not in r or "loss" not in r:
                continue  # header / summary records
            steps.append(r["step"])
            loss.append(r["loss"])
            lr.append(r.get("lr", float("nan")))
            phases.append(r.get("phase", 1))
    if not steps:
        sys.exit(f"plot_curve: {path}: no step records")
    return steps, loss, lr, phases


def moving_average(x, w):
    out, acc = [], 0.0
    for i, v in enumerate(x):
        acc += v
        if i >= w:
            acc -= x[i - w]
        out.append(acc / min(i + 1, w))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--log", action="append", required=True)
    ap.add_argument("--label", action="append", default=[])
    ap.add_argument("--out", required=True)
    ap.add_argument("--smooth", type=int, default=25)
    ap.add_argument("--title", default="embedtune compact model: InfoNCE training loss")
    a = ap.parse_args()
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=110)
    ax2 = ax.twinx()
    colors = ["tab:blue", "tab:orange", "tab:green", "tab:red"]
    for i, path in enumerate(a.log):
        steps, loss, lr, phases = read_log(path)
        lab = a.label[i] if i < len(a.label) else path
        c = colors[i % len(colors)]
        ax.plot(steps, loss, color=c, alpha=0.25, linewidth=0.8)
        ax.plot(steps, moving_average(loss, a.smooth), color=c, linewidth=1.8,
                label=f"{lab} (moving avg {a.smooth})")
        for j in range(1, len(steps)):
            if phases[j] != phases[j - 1]:  # phase boundary (a record with "phase": 2 starts phase 2)
                ax.axvline(steps[j], color=c, linestyle=":", linewidth=1.0)
                ax.text(steps[j], ax.get_ylim()[1], f" phase {phases[j]}", va="top", fontsize=8, color=c)
        if i == 0:
            ax2.plot(steps, lr, color="gray", linestyle="--", linewidth=1.0, label="learning rate")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("InfoNCE loss")
    ax2.set_ylabel("learning rate")
    ax.grid(alpha=0.3)
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    ax.legend(h1 + h2, l1 + l2, loc="upper right", fontsize=8)
    ax.set_title(a.title, fontsize=10)
    fig.tight_layout()
    fig.savefig(a.out)
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
