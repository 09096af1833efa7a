#!/usr/bin/python3
"""Golden values for tests/test_metrics.c from independent implementations:
sklearn.metrics.average_precision_score (AUPRC) and scipy.stats.spearmanr / pearsonr.
Run with Debian's python (apt-get install python3-sklearn python3-scipy):
    /usr/bin/python3 tools/gen_metrics_fixture.py > tests/fixtures/data/metrics_golden.txt
Scores are rounded to 1 decimal so that ties are frequent (tie handling is the point)."""
import numpy as np
import scipy
import sklearn
from scipy.stats import pearsonr, spearmanr
from sklearn.metrics import average_precision_score

rng = np.random.default_rng(20240821)
print(f"# sklearn {sklearn.__version__} scipy {scipy.__version__}; format: kind n / x... / y... / value")
for case in range(12):
    n = int(rng.integers(5, 60))
    y = (rng.random(n) < rng.uniform(0.15, 0.6)).astype(int)
    if y.sum() == 0:
        y[0] = 1
    s = np.round(rng.normal(size=n) + 0.8 * y, 1 if case % 2 else 0)  # case%2==0: integer scores, many ties
    print(f"auprc {n}")
    print(" ".join(f"{v:.1f}" for v in s))
    print(" ".join(str(v) for v in y))
    print(f"{average_precision_score(y, s):.15f}")
for case in range(12):
    n = int(rng.integers(3, 80))
    x = np.round(rng.normal(size=n), 0 if case % 3 == 0 else 1)
    yv = np.round(0.5 * x + rng.normal(size=n), 1 if case % 2 else 0)
    if np.all(x == x[0]) or np.all(yv == yv[0]):
        continue
    print(f"spearman {n}")
    print(" ".join(f"{v:.1f}" for v in x))
    print(" ".join(f"{v:.1f}" for v in yv))
    print(f"{spearmanr(x, yv).correlation:.15f}")
    print(f"pearson {n}")
    print(" ".join(f"{v:.1f}" for v in x))
    print(" ".join(f"{v:.1f}" for v in yv))
    print(f"{pearsonr(x, yv)[0]:.15f}")
