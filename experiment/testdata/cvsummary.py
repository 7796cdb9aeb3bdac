#!/usr/bin/python3
"""Summarise K-fold cross-validation lines of experiment/testdata/tune (-folds K): per recipe, the
held-out accuracy of every seed, its mean, and the same with the test-time flip; the mean paired
difference from the preset's recipe ({}) of the same kind, seed by seed. Test accuracy is not read.

    python3 cvsummary.py 'experiment/testdata/tune/results/cv-*.jsonl'
"""
import glob, json, statistics, sys
from collections import defaultdict

cv = defaultdict(dict)  # (kind, patch) -> seed -> (cv, cv_flip)
for pattern in sys.argv[1:]:
    for path in sorted(glob.glob(pattern)):
        for line in open(path):
            r = json.loads(line)
            if "cv" in r:
                cv[(r["kind"], json.dumps(r["patch"], sort_keys=True))][r["seed"]] = (r["cv"], r["cv_flip"])

print("| kind | recipe | per seed | mean | with flip | minus the preset's (paired) |")
print("|---|---|---|---|---|---|")
for (kind, patch), by in sorted(cv.items()):
    seeds = sorted(by)
    ref = cv.get((kind, "{}"), {})
    diffs = [by[s][0] - ref[s][0] for s in seeds if s in ref]
    d = f"{100 * statistics.mean(diffs):+.1f} over {len(diffs)}" if diffs and patch != "{}" else ""
    per = " / ".join(f"{100 * by[s][0]:.1f}" for s in seeds)
    print(f"| {kind} | `{patch}` | {per} | {100 * statistics.mean(v[0] for v in by.values()):.1f} | "
          f"{100 * statistics.mean(v[1] for v in by.values()):.1f} | {d} |")
