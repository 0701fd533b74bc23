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
        >>> score(images, targets, LPIPS.from_pretrained())["lpips"].shape
        (8,)
        ```
    """
    with torch.no_grad():
        return {
            "psnr": psnr(prediction, target).cpu().numpy(),
            "ssim": ssim(prediction, target).cpu().numpy(),
            "lpips": lpips(prediction, target).cpu().numpy(),
        }


def closest_view_errors(images: torch.Tensor, object_views: list[torch.Tensor], target_indices, lpips: LPIPS) -> list[float]:
    """For each image, the azimuth error in degrees of the object's true view it looks most like (LPIPS).

    A model that ignores the requested azimuth still scores well on PSNR when objects look alike from all sides;
    this tells whether it drew the object from the right side.

    Example:
        ```py
        >>> closest_view_errors(batch.targets, batch.object_views, [s.target_index for s in batch.samples], lpips)
        [0.0, 0.0, ...]
        ```
    """
    errors = []
    with torch.no_grad():
        for image, views, target_index in zip(images, object_views, target_indices):
            views = views.to(image.device)
            distances = lpips(image[None].expand(len(views), -1, -1, -1), views)
            steps = circular_view_distance(int(distances.argmin()), int(target_index), len(views))
            errors.append(AZIMUTH_STEP_DEGREES * steps)
    return errors


def score_predictions(batch: EvalBatch, predictions: dict[str, torch.Tensor], lpips: LPIPS,
                      seconds: dict[str, float] | None = None) -> list[dict]:
    """One record per (method, sample): the sample's identity, PSNR / SSIM / LPIPS and the pose accuracy.

    Example:
        ```py
        >>> records = score_predictions(batch, baseline_predictions(batch), lpips)
        >>> sorted(records[0])[:4]
        ['category', 'closest_view_error', 'input_indices', 'lpips']
        ```
    """
    records = []
    target_indices = [s.target_index for s in batch.samples]
    for method, images in predictions.items():
        metrics = score(images, batch.targets, lpips)
        errors = closest_view_errors(images, batch.object_views, target_indices, lpips)
        for i, sample in enumerate(batch.samples):
            records.append({
                "method": method, "num_views": sample.num_views, "category": sample.category,
                "object_id": sample.object_id, "target_index": sample.target_index,
                "input_indices": list(sample.input_indices), "seconds": (seconds or {}).get(method, 0.0),
                **{name: float(values[i]) for name, values in metrics.items()},
                "closest_view_error": errors[i], "pose_within_15": float(errors[i] <= POSE_TOLERANCE_DEGREES),
            })
    return records
