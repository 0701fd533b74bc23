"""Scoring generated views: PSNR, SSIM, LPIPS against the true view, and whether it shows the requested side."""

import numpy as np
import torch

from ..constants import AZIMUTH_STEP_DEGREES, POSE_TOLERANCE_DEGREES
from ..metrics import LPIPS, psnr, ssim
from .samples import EvalBatch, circular_view_distance


def score(prediction: torch.Tensor, target: torch.Tensor, lpips: LPIPS) -> dict[str, np.ndarray]:
    """PSNR, SSIM and LPIPS of `(B, 3, H, W)` images in [0, 1], one value per image.

    Example:
        ```py
        >>> from viewfusion_diffusers.data import NMRDataset, make_eval_samples
        >>> from viewfusion_diffusers.evaluation import baseline_predictions
        >>> dataset = NMRDataset("data/pybullet-64", split="test")
        >>> batch = EvalBatch.load(dataset, make_eval_samples(dataset, num_views=(3,)))
        >>> metrics = score(baseline_predictions(batch)["mean_view"], batch.targets, LPIPS.from_pretrained())
        >>> metrics["psnr"].round(2), metrics["lpips"].round(3)  # one value per image
        (array([12.73, 14.66], dtype=float32), array([0.286, 0.202], dtype=float32))
        ```
    """
    with torch.no_grad():
        return {
            "psnr": psnr(prediction, target).cpu().numpy(),
            "ssim": ssim(prediction, target).cpu().numpy(),
            "lpips": lpips(prediction, target).cpu().numpy(),
        }


def view_distances(
    predictions: dict[str, torch.Tensor], object_views: list[torch.Tensor], lpips: LPIPS, object_keys=None
) -> dict[str, torch.Tensor]:
    """LPIPS of every method's output against each of its object's true views: `{method: (B, 24)}`.

    Pose scoring compares each output with all 24 views of its object. The views' LPIPS features are computed
    once per object (and shared by every method and by samples of the same object, given `object_keys`), and each
    output's once, instead of once per pair: the same distances as `lpips(image, view)` up to float rounding.

    Example:
        ```py
        >>> from viewfusion_diffusers.data import NMRDataset, make_eval_samples
        >>> from viewfusion_diffusers.evaluation import baseline_predictions
        >>> dataset = NMRDataset("data/pybullet-64", split="test")
        >>> samples = make_eval_samples(dataset, num_views=(1, 3), num_objects=1)  # one object, with 1 and 3 views
        >>> batch = EvalBatch.load(dataset, samples)
        >>> predictions = {"truth": batch.targets, **baseline_predictions(batch)}
        >>> keys = [(s.category, s.object_id) for s in samples]  # the same object: its views' features computed once
        >>> distances = view_distances(predictions, batch.object_views, LPIPS.from_pretrained(), object_keys=keys)
        >>> distances["mean_view"].shape
        torch.Size([2, 24])
        >>> distances["truth"].argmin(dim=1), [s.target_index for s in samples]  # a true view is its own closest
        (tensor([20, 20]), [20, 20])
        ```
    """
    object_keys = list(range(len(object_views))) if object_keys is None else list(object_keys)
    distances = {name: [] for name in predictions}
    with torch.no_grad():
        output_features = {name: lpips.normalized_features(images) for name, images in predictions.items()}
        cached_key, view_features = None, None
        for i, views in enumerate(object_views):
            if object_keys[i] != cached_key:
                some_output = next(iter(predictions.values()))
                view_features = lpips.normalized_features(views.to(some_output.device))
                cached_key = object_keys[i]
            for name, features in output_features.items():
                distances[name].append(lpips.distance([f[i : i + 1] for f in features], view_features))
    return {name: torch.stack(rows) for name, rows in distances.items()}


def closest_view_errors(
    images: torch.Tensor, object_views: list[torch.Tensor], target_indices, lpips: LPIPS
) -> list[float]:
    """For each image, the azimuth error in degrees of the object's true view it looks most like (LPIPS).

    A model that ignores the requested azimuth still scores well on PSNR when objects look alike from all sides;
    this tells whether it drew the object from the right side.

    Example:
        ```py
        >>> from viewfusion_diffusers.data import NMRDataset, make_eval_samples
        >>> from viewfusion_diffusers.evaluation import baseline_predictions
        >>> dataset = NMRDataset("data/pybullet-64", split="test")
        >>> batch = EvalBatch.load(dataset, make_eval_samples(dataset, num_views=(3,), num_objects=1))
        >>> lpips = LPIPS.from_pretrained()
        >>> target_indices = [s.target_index for s in batch.samples]
        >>> closest_view_errors(batch.targets, batch.object_views, target_indices, lpips)  # the truth: 0 degrees
        [0.0]
        >>> closest_view_errors(baseline_predictions(batch)["mean_view"], batch.object_views, target_indices, lpips)
        [120.0]
        ```
    """
    distances = view_distances({"images": images}, object_views, lpips)["images"]
    return [
        AZIMUTH_STEP_DEGREES * circular_view_distance(int(row.argmin()), int(target_index), row.numel())
        for row, target_index in zip(distances, target_indices)
    ]


def score_predictions(
    batch: EvalBatch, predictions: dict[str, torch.Tensor], lpips: LPIPS, seconds: dict[str, float] | None = None
) -> list[dict]:
    """One record per (method, sample): the sample's identity, PSNR / SSIM / LPIPS and the pose accuracy.

    The LPIPS against the target is read from the distances to all the object's views (the target is one of
    them), so each image's features are computed once.

    Example:
        ```py
        >>> from viewfusion_diffusers.data import NMRDataset, make_eval_samples
        >>> from viewfusion_diffusers.evaluation import baseline_predictions
        >>> dataset = NMRDataset("data/pybullet-64", split="test")
        >>> batch = EvalBatch.load(dataset, make_eval_samples(dataset, num_views=(1, 3), num_objects=1))
        >>> records = score_predictions(batch, baseline_predictions(batch), LPIPS.from_pretrained())
        >>> len(records)  # 2 methods x 2 samples
        4
        >>> sorted(records[0])[:4]
        ['category', 'closest_view_error', 'input_indices', 'lpips']
        ```
    """
    records = []
    object_keys = [(s.category, s.object_id) for s in batch.samples]
    distances = view_distances(predictions, batch.object_views, lpips, object_keys)
    for method, images in predictions.items():
        with torch.no_grad():
            metrics = {
                "psnr": psnr(images, batch.targets).cpu().numpy(),
                "ssim": ssim(images, batch.targets).cpu().numpy(),
            }
        for i, sample in enumerate(batch.samples):
            row = distances[method][i]
            error = AZIMUTH_STEP_DEGREES * circular_view_distance(
                int(row.argmin()), int(sample.target_index), row.numel()
            )
            records.append(
                {
                    "method": method,
                    "num_views": sample.num_views,
                    "category": sample.category,
                    "object_id": sample.object_id,
                    "target_index": sample.target_index,
                    "input_indices": list(sample.input_indices),
                    "seconds": (seconds or {}).get(method, 0.0),
                    **{name: float(values[i]) for name, values in metrics.items()},
                    "lpips": float(row[sample.target_index]),
                    "closest_view_error": error,
                    "pose_within_15": float(error <= POSE_TOLERANCE_DEGREES),
                }
            )
    return records
