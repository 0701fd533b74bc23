"""An evaluation batch loaded from the dataset, the two baselines that need no model, and the pipeline's
predictions for a batch."""

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..constants import NUM_VIEWS, view_azimuth
from .methods import EvalMethod


def circular_view_distance(a: int, b: int, num_azimuths: int = NUM_VIEWS) -> int:
    """How many azimuth steps apart two view indices are, the short way round (0 .. `num_azimuths // 2`).

    Example:
        ```py
        >>> circular_view_distance(1, 23)
        2
        ```
    """
    return min((a - b) % num_azimuths, (b - a) % num_azimuths)


def nearest_input_view(input_indices, target_index: int, num_azimuths: int = NUM_VIEWS) -> int:
    """The input view index whose azimuth is circularly closest to the target's (ties: the earlier input).

    Example:
        ```py
        >>> nearest_input_view((4, 21), target_index=0)  # 45 degrees the other way round beats 60
        21
        ```
    """
    return min(input_indices, key=lambda k: circular_view_distance(k, target_index, num_azimuths))


@dataclass
class EvalBatch:
    """Evaluation samples with their images: what every method is given and scored against.

    Args:
        samples (`list[EvalSample]`): from `make_eval_samples`.
        object_views (`list[torch.Tensor]`): per sample all the object's views `(24, 3, H, W)` in [0, 1].
        input_views (`list[torch.Tensor]`): per sample its input views `(N, 3, H, W)` in [0, 1].
        targets (`torch.Tensor`): the true target views `(B, 3, H, W)` in [0, 1].
        target_azimuths (`list[float]`): the target views' azimuths in degrees.
        input_azimuths (`list[list[float]]`): per sample the input views' true azimuths in degrees.
    """

    samples: list
    object_views: list[torch.Tensor]
    input_views: list[torch.Tensor]
    targets: torch.Tensor
    target_azimuths: list[float]
    input_azimuths: list[list[float]]

    @classmethod
    def load(cls, dataset, samples, device="cpu") -> "EvalBatch":
        """Read the samples' views from an `NMRDataset`.

        Example:
            ```py
            >>> from viewfusion_diffusers.data import NMRDataset, make_eval_samples
            >>> dataset = NMRDataset("data/pybullet-64", split="test")
            >>> batch = EvalBatch.load(dataset, make_eval_samples(dataset, num_views=(3,)))  # the 2 test objects
            >>> batch.targets.shape, batch.input_views[0].shape, batch.object_views[0].shape
            (torch.Size([2, 3, 64, 64]), torch.Size([3, 3, 64, 64]), torch.Size([24, 3, 64, 64]))
            >>> batch.target_azimuths, batch.input_azimuths
            ([300.0, 180.0], [[270.0, 60.0, 315.0], [165.0, 270.0, 300.0]])
            ```
        """
        object_views, input_views, targets = [], [], []
        for sample in samples:
            views = dataset.load_views(sample.object_index).float() / 255.0
            object_views.append(views)
            input_views.append(views[list(sample.input_indices)].to(device))
            targets.append(views[sample.target_index])
        return cls(
            samples=list(samples),
            object_views=object_views,
            input_views=input_views,
            targets=torch.stack(targets).to(device),
            target_azimuths=[view_azimuth(s.target_index) for s in samples],
            input_azimuths=[[view_azimuth(k) for k in s.input_indices] for s in samples],
        )

    @property
    def resolution(self) -> int:
        return self.targets.shape[-1]


def baseline_predictions(batch: EvalBatch) -> dict[str, torch.Tensor]:
    """The baselines, `(B, 3, H, W)` each: `nearest_view`, the input view closest in azimuth to the target (an
    oracle: it uses the true poses), and `mean_view`, the pixel average of the input views.

    Example:
        ```py
        >>> from viewfusion_diffusers.data import NMRDataset, make_eval_samples
        >>> dataset = NMRDataset("data/pybullet-64", split="test")
        >>> batch = EvalBatch.load(dataset, make_eval_samples(dataset, num_views=(3,)))
        >>> {name: images.shape for name, images in baseline_predictions(batch).items()}
        {'nearest_view': torch.Size([2, 3, 64, 64]), 'mean_view': torch.Size([2, 3, 64, 64])}
        ```
    """
    nearest = [
        views[list(s.input_indices).index(nearest_input_view(s.input_indices, s.target_index))]
        for views, s in zip(batch.input_views, batch.samples)
    ]
    return {
        "nearest_view": torch.stack(nearest).to(batch.targets.device),
        "mean_view": torch.stack([views.mean(0) for views in batch.input_views]).to(batch.targets.device),
    }


def sample_pipeline(pipeline, batch: EvalBatch, seeds, method: EvalMethod, num_inference_steps: int):
    """The pipeline's outputs `(B, 3, H, W)` at the batch's resolution and their view weights, for one method.

    Every sample's noise comes from its own seed, so all methods see the same noise and a sample's result does
    not depend on its batch.

    Example:
        ```py
        >>> from viewfusion_diffusers import ViewFusionPipeline
        >>> from viewfusion_diffusers.data import NMRDataset, make_eval_samples
        >>> pipe = ViewFusionPipeline.from_pretrained("pipelines/viewfusion-pybullet-64")
        >>> dataset = NMRDataset("data/pybullet-64", split="test")
        >>> batch = EvalBatch.load(dataset, make_eval_samples(dataset, num_views=(1, 3), num_objects=1))
        >>> method = EvalMethod("viewfusion_posed", posed=True)
        >>> images, weights = sample_pipeline(pipe, batch, [0, 1], method, num_inference_steps=2)  # 50 for real views
        >>> images.shape, [w.shape for w in weights]
        (torch.Size([2, 3, 64, 64]), [torch.Size([1, 3, 64, 64]), torch.Size([3, 3, 64, 64])])
        ```
    """
    generators = [torch.Generator().manual_seed(seed) for seed in seeds]
    out = pipeline(
        batch.input_views,
        batch.target_azimuths,
        input_azimuths=batch.input_azimuths if method.posed else None,
        num_inference_steps=num_inference_steps,
        generator=generators,
        weighting=method.weighting,
        output_type="pt",
    )
    images, weights = out.images.to(batch.targets.device), out.view_weights
    if images.shape[-1] != batch.resolution:  # a pipeline working at another size than the data: score at the data's
        images = F.interpolate(images, size=batch.resolution, mode="bicubic", antialias=True).clamp(0, 1)
        weights = [F.interpolate(w, size=batch.resolution, mode="nearest") for w in weights]
    return images, weights
