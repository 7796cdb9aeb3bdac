#!/usr/bin/python3
"""Summarise tune runs (JSON lines of experiment/testdata/tune): pick the baseline and the fine-tuning
recipe with the best mean VALIDATION accuracy over all runs given, then report their TEST accuracy and
the gain per data set as mean +- sample std over seeds.

    python3 summarize.py full=/tmp/rx/full*.out emb=/tmp/rx/emb*.out
"""
import glob, json, statistics, sys
from collections import defaultdict

runs = defaultdict(list)  # (dataset, kind, patch) -> [(seed, val, test)]
rot = defaultdict(list)
for arg in sys.argv[1:]:
    name, pattern = arg.split("=", 1)
    for path in sorted(glob.glob(pattern)):
        for line in open(path):
            r = json.loads(line)
            if r.get("variant") == "pretext":
                rot[name].append(r["rot_test"])
                continue
            kind = {"fine-tuning": "finetune"}.get(r["kind"], r["kind"])  # tune prints the phase label
            runs[(name, kind, json.dumps(r["patch"], sort_keys=True))].append((r["seed"], r["val"], r["test"]))

def ms(xs):
    return (statistics.mean(xs), statistics.stdev(xs) if len(xs) > 1 else 0.0)

best = {}
for kind in ("baseline", "finetune"):
    means = defaultdict(list)
    for (ds, k, p), v in runs.items():
        if k == kind:
            means[p] += [x[1] for x in v]
    for p, vals in sorted(means.items()):
        print(f"{kind:8s} {p:28s} mean validation {100*statistics.mean(vals):5.1f} over {len(vals)} runs")
    best[kind] = max(means, key=lambda p: statistics.mean(means[p]))
    print(f"-> {kind} recipe chosen on validation: {best[kind]}")
print()
print("| data | baseline | fine-tuned | gain | rotation test acc | seeds |")
print("|---|---|---|---|---|---|")
for ds in sorted(set(k[0] for k in runs)):
    b = {s: t for s, v, t in runs[(ds, "baseline", best["baseline"])]}
    f = {s: t for s, v, t in runs[(ds, "finetune", best["finetune"])]}
    seeds = sorted(set(b) & set(f))
    if not seeds:
        continue
    bm, bs = ms([100 * b[s] for s in seeds]); fm, fs = ms([100 * f[s] for s in seeds])
    gm, gs = ms([100 * (f[s] - b[s]) for s in seeds])
    print(f"| {ds} | {bm:.1f} ± {bs:.1f} | {fm:.1f} ± {fs:.1f} | {gm:+.1f} ± {gs:.1f} | {100*statistics.mean(rot[ds]):.1f} | {seeds} |")
