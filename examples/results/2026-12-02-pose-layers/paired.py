"""Paired LPIPS differences between evaluation files that scored the same samples (mean ± 95% CI).

python paired.py SHIPPED.json NAME=RUN.json [NAME=RUN.json ...]
"""

import json
import sys

import numpy as np

from viewfusion_diffusers.evaluation.statistics import mean_and_ci, paired_differences


def summary(records, method):
    out = {}
    for n in sorted({r["num_views"] for r in records if r["method"] == method}):
        rows = [r for r in records if r["method"] == method and r["num_views"] == n]
        out[n] = (
            f"{np.mean([r['lpips'] for r in rows]):.3f} ({100 * np.mean([r['pose_within_15'] for r in rows]):.0f}%, "
            f"n={len(rows)})"
        )
    return out


def line(label, differences):
    cells = []
    for n, d in sorted(differences.items()):
        mean, ci, _ = mean_and_ci(d)
        cells.append(f"N={n}: {mean:+.3f} ± {ci:.3f}")
    print(f"{label:32s}" + " | ".join(cells))


shipped = json.load(open(sys.argv[1]))["records"]
runs = {}
for spec in sys.argv[2:]:
    name, path = spec.split("=", 1)
    runs[name] = json.load(open(path))["records"]
for name, records in runs.items():
    print(f"## {name}")
    for method in sorted({r["method"] for r in records}):
        print(method, summary(records, method))
    line("unposed minus shipped:", paired_differences(records, "viewfusion", "viewfusion", reference_records=shipped))
    if any(r["method"] == "viewfusion_posed" for r in records):
        line(
            "posed minus shipped:",
            paired_differences(records, "viewfusion_posed", "viewfusion", reference_records=shipped),
        )
        line("posed minus unposed:", paired_differences(records, "viewfusion_posed", "viewfusion"))
        line("posed minus nearest:", paired_differences(records, "viewfusion_posed", "nearest_view"))
        line("posed minus mean view:", paired_differences(records, "viewfusion_posed", "mean_view"))
        line("learned minus equal, posed:", paired_differences(records, "viewfusion_posed", "equal_weights_posed"))
    line("unposed minus nearest:", paired_differences(records, "viewfusion", "nearest_view"))
    line("learned minus equal, unposed:", paired_differences(records, "viewfusion", "equal_weights"))
names = list(runs)
for i, a in enumerate(names):
    for b in names[i + 1 :]:
        print(f"## {a} minus {b}")
        for method in ("viewfusion", "viewfusion_posed"):
            if any(r["method"] == method for r in runs[a]) and any(r["method"] == method for r in runs[b]):
                line(method, paired_differences(runs[a], method, method, reference_records=runs[b]))
