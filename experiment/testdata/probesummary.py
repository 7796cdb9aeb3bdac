#!/usr/bin/python3
"""Summarise the pretext lines of experiment/testdata/tune -probes: per file group and recipe
(patch), the rotation test accuracy and, per block, the linear probe's cross-validated accuracy
inside the labeled set (what recipes are chosen by) for the pretrained and the random network, and
their difference; test accuracies beside them for the record, never for choosing.

    python3 probesummary.py 'experiment/testdata/tune/results/pretext-quick-*.jsonl'
"""
import glob, json, statistics, sys
from collections import defaultdict

rows = defaultdict(lambda: defaultdict(dict))  # (group, patch) -> seed -> network -> line
for pattern in sys.argv[1:]:
    for path in sorted(glob.glob(pattern)):
        group = path.rsplit("/", 1)[-1].split("-seed")[0].removesuffix(".jsonl")
        for line in open(path):
            r = json.loads(line)
            key = (group, json.dumps(r.get("patch", {}), sort_keys=True))
            rows[key][r["seed"]][r.get("network", "pretext")] = r


def mean(xs):
    return 100 * statistics.mean(xs) if xs else float("nan")


def blocks(by, net, field):
    lines = [by[s][net][field] for s in by if net in by[s]]
    return [mean([l[b] for l in lines]) for b in range(len(lines[0]))] if lines else []


print("| group | recipe | seeds | rotation | probe CV: pretrained | probe CV: random | CV pretrained - random | probe test: pretrained | probe test: random | kNN test: pretrained |")
print("|---|---|---|---|---|---|---|---|---|---|")
for (group, patch), by in sorted(rows.items()):
    rot = mean([by[s]["pretext"]["rot_test"] for s in by if "pretext" in by[s]])
    p, r = blocks(by, "pretrained", "probe_cv"), blocks(by, "random", "probe_cv")
    fmt = lambda v: " / ".join(f"{x:.1f}" for x in v)
    diff = " / ".join(f"{a - b:+.1f}" for a, b in zip(p, r))
    print(f"| {group} | `{patch}` | {len(by)} | {rot:.1f} | {fmt(p)} | {fmt(r)} | {diff} | "
          f"{fmt(blocks(by, 'pretrained', 'probe_test'))} | {fmt(blocks(by, 'random', 'probe_test'))} | {fmt(blocks(by, 'pretrained', 'knn_test'))} |")
