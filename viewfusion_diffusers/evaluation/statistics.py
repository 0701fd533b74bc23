"""Means with 95% confidence intervals, and differences paired on the same samples."""

import math
import os
from collections import defaultdict

import numpy as np


def mean_and_ci(values) -> tuple[float, float, int]:
    """Mean, 95% confidence half-width (normal approximation) over the finite values, and how many were infinite.

    Infinite values are PSNRs of images identical to the truth (the nearest-view baseline when the target is an
    input); they are counted, not averaged.

    Example:
        ```py
        >>> mean_and_ci([1.0, 2.0, 3.0, float("inf")])
        (2.0, 1.1316..., 1)
        ```
    """
    values = np.asarray(values, dtype=np.float64)
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return float("inf"), 0.0, int(values.size)
    half_width = 1.96 * finite.std(ddof=1) / math.sqrt(finite.size) if finite.size > 1 else 0.0
    return float(finite.mean()), float(half_width), int(values.size - finite.size)


def sample_key(record: dict) -> tuple:
    """What makes two records the same evaluation sample: the object, the target and the input views.

    Example:
        ```py
        >>> sample_key({"num_views": 2, "category": "car", "object_id": "007", "target_index": 6,
        ...             "input_indices": [0, 12]})
        (2, 'car', '007', 6, (0, 12))
        ```
    """
    return (
        record["num_views"],
        record["category"],
        record["object_id"],
        record["target_index"],
        tuple(record["input_indices"]),
    )


def paired_differences(
    records, method: str, reference: str, metric: str = "lpips", reference_records=None
) -> dict[int, np.ndarray]:
    """Per number of views, `method`'s per-sample `metric` minus `reference`'s on the same samples.

    `reference_records` (default: `records`) lets the reference come from another run. Numbers of views where
    either method is missing are left out; samples present in only one of them are an error, since the
    difference would not be paired.

    Example:
        ```py
        >>> import json
        >>> results = json.load(open("examples/results/2026-11-25-cpu-2core/eval-ddpm50.json"))  # a past evaluation
        >>> differences = paired_differences(results["records"], "viewfusion", "nearest_view")
        >>> sorted(differences), differences[6].shape  # per number of views, one difference per sample
        ([1, 2, 3, 4, 5, 6], (20,))
        >>> mean_and_ci(differences[6])[:2]  # the learned weights' LPIPS is higher than the nearest input view's
        (0.1191..., 0.0359...)
        ```
    """
    reference_records = records if reference_records is None else reference_records
    ours = {sample_key(r): r[metric] for r in records if r["method"] == method}
    theirs = {sample_key(r): r[metric] for r in reference_records if r["method"] == reference}
    by_views = defaultdict(list)
    for num_views in sorted({key[0] for key in ours} & {key[0] for key in theirs}):
        mine = {k: v for k, v in ours.items() if k[0] == num_views}
        other = {k: v for k, v in theirs.items() if k[0] == num_views}
        if mine.keys() != other.keys():
            raise ValueError(
                f"{method!r} and {reference!r} were scored on different samples with {num_views} views; "
                "a paired difference needs the same samples (same data, split, seed and --num_objects)."
            )
        by_views[num_views] = np.array([mine[k] - other[k] for k in sorted(mine)], dtype=np.float64)
    return dict(by_views)


def paired_lpips_difference(row: dict, reference: dict) -> tuple[float, float] | None:
    """Mean and 95% CI half-width of a sampler study row's per-sample LPIPS minus the reference row's, or None
    for the reference itself and for rows not scored on the same samples.

    Example:
        ```py
        >>> paired_lpips_difference({"lpips_per_sample": [0.3, 0.5]}, {"lpips_per_sample": [0.2, 0.3]})
        (0.15, 0.098...)
        ```
    """
    per_sample = np.asarray(row.get("lpips_per_sample", []))
    reference_per_sample = np.asarray(reference.get("lpips_per_sample", []))
    if row is reference or reference_per_sample.size == 0 or per_sample.shape != reference_per_sample.shape:
        return None
    mean, half_width, _ = mean_and_ci(per_sample - reference_per_sample)
    return mean, half_width


# The settings that decide which samples an evaluation draws: two runs can be compared sample by sample only
# when these agree.
SAMPLE_DEFINING_SETTINGS = ("data_dir", "split", "categories", "seed", "num_objects")


def check_comparable(config: dict, other_config: dict, other_name: str = "the other run") -> None:
    """Raise `ValueError` naming the first setting on which two runs' evaluation samples could differ.

    Example:
        ```py
        >>> config = {"data_dir": "data/pybullet-64", "split": "test", "seed": 0, "scheduler": "ddpm"}
        >>> check_comparable(config, {**config, "scheduler": "ddim"})  # another sampler on the same samples
        >>> check_comparable(config, {**config, "seed": 1})
        Traceback (most recent call last):
        ValueError: --compare_to: the other run used seed = 1, this run 0; rerun with the same seed so that both ...
        ```
    """
    for name in SAMPLE_DEFINING_SETTINGS:
        mine, theirs = config.get(name), other_config.get(name)
        if name == "data_dir" and mine is not None and theirs is not None:
            mine, theirs = os.path.realpath(mine), os.path.realpath(theirs)
        if mine != theirs:
            raise ValueError(
                f"--compare_to: {other_name} used {name} = {other_config.get(name)!r}, this run {config.get(name)!r}; "
                f"rerun with the same {name} so that both score the same samples."
            )
