"""`ViewFusionPipeline`: sample a novel view of an object from any number of unposed input views."""

import inspect
import json
import os
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import PIL.Image
import torch
from diffusers import (
    DDIMScheduler,
    DDPMScheduler,
    DiffusionPipeline,
    DPMSolverMultistepScheduler,
    UniPCMultistepScheduler,
)
from diffusers.schedulers.scheduling_utils import SchedulerMixin
from diffusers.utils import BaseOutput
from diffusers.utils.torch_utils import randn_tensor
from huggingface_hub import snapshot_download

from .fusion import pad_mask, predict_fused_noise
from .images import preprocess_views
from .unet import ViewFusionUNet2DModel

SCHEDULERS = {
    "ddpm": DDPMScheduler,
    "ddim": DDIMScheduler,
    "dpmsolver": DPMSolverMultistepScheduler,
    "dpmsolver-sde": DPMSolverMultistepScheduler,
    "unipc": UniPCMultistepScheduler,
}
# Settings that define a name, applied over whatever config the scheduler is built from.
SCHEDULER_SETTINGS = {
    "dpmsolver": {"algorithm_type": "dpmsolver++"},
    "dpmsolver-sde": {"algorithm_type": "sde-dpmsolver++"},
}


def default_scheduler(prediction_type: str = "epsilon") -> DDPMScheduler:
    """The paper's noise schedule: linear betas 1e-6 .. 1e-2 over 2,000 steps, x0 clipped to [-1, 1].

    Example:
        ```py
        >>> default_scheduler().config.num_train_timesteps
        2000
        ```
    """
    return DDPMScheduler(
        num_train_timesteps=2000,
        beta_start=1e-6,
        beta_end=1e-2,
        beta_schedule="linear",
        prediction_type=prediction_type,
        clip_sample=True,
    )


def scheduler_from_name(name: str, config) -> SchedulerMixin:
    """Build a scheduler by short name (a key of `SCHEDULERS`) from another scheduler's config.

    `ddpm` with fewer steps than the training schedule is ancestral sampling on a strided schedule (DDIM with
    eta = 1); `dpmsolver-sde` is DPM-Solver++'s stochastic variant. Both draw fresh noise at every step.

    Example:
        ```py
        >>> pipe.scheduler = scheduler_from_name("dpmsolver", pipe.scheduler.config)
        ```
    """
    if name not in SCHEDULERS:
        raise ValueError(f"Unknown scheduler {name!r}; choose one of {sorted(SCHEDULERS)}.")
    return SCHEDULERS[name].from_config(config, **SCHEDULER_SETTINGS.get(name, {}))


@dataclass
class ViewFusionPipelineOutput(BaseOutput):
    """
    Output of [`ViewFusionPipeline`].

    Args:
        images (`list[PIL.Image.Image]`, `np.ndarray` or `torch.Tensor`):
            The novel views, one per object and sample (`num_images_per_prompt`), in [0, 1] for "np" / "pt".
        view_weights (`list[np.ndarray]` or `list[torch.Tensor]`):
            For each image, the fusion weights of its input views at the last denoising step, `(N, 3, H, W)`,
            summing to one over the views at every pixel and channel.
    """

    images: list[PIL.Image.Image] | np.ndarray | torch.Tensor
    view_weights: list[np.ndarray] | list[torch.Tensor]


class ViewFusionPipeline(DiffusionPipeline):
    r"""
    Pipeline for novel view synthesis with ViewFusion (composable diffusion over unposed input views).

    At every denoising step each input view, concatenated with the current noisy target, goes through the
    shared U-Net (all views of all objects in one batch); the per-view noise predictions are fused with a
    per-pixel softmax over the views' weight logits ([`fuse_noise`]); the scheduler takes one step with the
    fused prediction.

    Parameters:
        unet ([`ViewFusionUNet2DModel`]): the denoiser, returning noise and weight logits per view.
        scheduler ([`SchedulerMixin`]): any diffusers scheduler; the default is the paper's [`DDPMScheduler`],
            which samples ancestrally on `num_inference_steps` of its training steps (2,000 in the paper).
            Swap it with e.g. `DDIMScheduler.from_config(pipe.scheduler.config)` for a deterministic sampler.

    Example:
        ```py
        >>> import torch
        >>> from viewfusion_diffusers import ViewFusionPipeline

        >>> pipe = ViewFusionPipeline.from_pretrained("pipelines/viewfusion-pybullet-64")
        >>> out = pipe(input_views=[img_a, img_b], target_azimuth=90.0, generator=torch.Generator().manual_seed(0))
        >>> out.images[0].save("novel.png")
        ```
    """

    model_cpu_offload_seq = "unet"
    _callback_tensor_inputs = ["latents"]

    def __init__(self, unet: ViewFusionUNet2DModel, scheduler: SchedulerMixin):
        super().__init__()
        self.register_modules(unet=unet, scheduler=scheduler)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike, **kwargs):
        r"""Load a pipeline from a local folder or a Hub repo id.

        A repo id is first downloaded with `huggingface_hub.snapshot_download` (honouring `revision`,
        `cache_dir`, `token`, `local_files_only` and `HF_HUB_OFFLINE`), then loaded as a local folder: plain
        diffusers cannot resolve a model class that lives outside diffusers when it loads from the Hub.

        Example:
            ```py
            >>> pipe = ViewFusionPipeline.from_pretrained("your-name/viewfusion-pybullet-64")
            ```
        """
        path = str(pretrained_model_name_or_path)
        if not os.path.isdir(path):
            path = snapshot_download(
                path,
                revision=kwargs.pop("revision", None),
                cache_dir=kwargs.get("cache_dir"),
                token=kwargs.get("token"),
                local_files_only=kwargs.get("local_files_only", False),
            )
        index_path = os.path.join(path, "model_index.json")
        if not os.path.isfile(index_path):
            raise ValueError(f"{pretrained_model_name_or_path} is not a pipeline folder: it has no model_index.json.")
        with open(index_path) as f:
            class_name = json.load(f).get("_class_name")
        if class_name != cls.__name__:
            raise ValueError(
                f"{pretrained_model_name_or_path} holds a {class_name!r} pipeline, not a {cls.__name__}; "
                "point to a folder written by ViewFusionPipeline.save_pretrained."
            )
        return super().from_pretrained(path, **kwargs)

    def prepare_views(self, input_views, target_azimuth, input_azimuths=None) -> tuple[list[torch.Tensor], list[float], list]:
        """Normalise `input_views` (one object or a batch), `target_azimuth` and `input_azimuths` to one entry per
        object; an object's `input_azimuths` entry is a list of one azimuth per view, or `None` (unposed)."""
        if isinstance(input_views, torch.Tensor) and input_views.ndim == 5:
            input_views = list(input_views)
        if isinstance(input_views, (list, tuple)) and len(input_views) == 0:
            raise ValueError("`input_views` is empty; give at least one view of the object.")
        is_batch = isinstance(input_views, (list, tuple)) and (
            isinstance(input_views[0], (list, tuple)) or (torch.is_tensor(input_views[0]) and input_views[0].ndim == 4)
        )
        objects = list(input_views) if is_batch else [input_views]
        resolution = self.unet.config.sample_size
        views = [preprocess_views(v, resolution, name=f"input_views[{i}]" if is_batch else "input_views")
                 for i, v in enumerate(objects)]

        if isinstance(target_azimuth, torch.Tensor):
            target_azimuth = target_azimuth.detach().cpu().tolist()
        try:
            azimuths = np.asarray(target_azimuth, dtype=np.float64).reshape(-1).tolist()
        except (TypeError, ValueError):
            raise TypeError(f"`target_azimuth` must be a number of degrees or a list of them, got {target_azimuth!r}.") from None
        if len(azimuths) == 1:
            azimuths = azimuths * len(views)
        if len(azimuths) != len(views):
            raise ValueError(f"Got {len(views)} objects but {len(azimuths)} target azimuths; give one per object.")
        if not all(np.isfinite(azimuths)):
            raise ValueError(f"`target_azimuth` must be finite degrees, got {azimuths}.")
        return views, azimuths, self.prepare_input_azimuths(input_azimuths, views, is_batch)

    def prepare_input_azimuths(self, input_azimuths, views: list[torch.Tensor], is_batch: bool) -> list[list[float] | None]:
        """Check `input_azimuths` against the views: per object one azimuth per view, or `None`."""
        if input_azimuths is None:
            return [None] * len(views)
        if not self.unet.config.relative_pose:
            raise ValueError(
                "This pipeline's U-Net was trained without poses (relative_pose=False): leave `input_azimuths=None`."
            )
        if isinstance(input_azimuths, torch.Tensor):
            input_azimuths = input_azimuths.detach().cpu().tolist()
        per_object = list(input_azimuths) if is_batch else [input_azimuths]
        if len(per_object) != len(views):
            raise ValueError(f"Got {len(views)} objects but {len(per_object)} entries in `input_azimuths`; give one per object.")
        checked = []
        for i, (azimuths, object_views) in enumerate(zip(per_object, views)):
            name = f"input_azimuths[{i}]" if is_batch else "input_azimuths"
            if azimuths is None:
                checked.append(None)
                continue
            try:
                azimuths = np.asarray(azimuths, dtype=np.float64).reshape(-1)
            except (TypeError, ValueError):
                raise TypeError(f"`{name}` must be a list of degrees, one per input view, got {azimuths!r}.") from None
            if len(azimuths) != len(object_views):
                raise ValueError(f"`{name}` has {len(azimuths)} azimuths for {len(object_views)} input views; give one per view.")
            if not np.isfinite(azimuths).all():
                raise ValueError(f"`{name}` must be finite degrees, got {azimuths.tolist()}.")
            checked.append(azimuths.tolist())
        return checked

    @torch.no_grad()
    def __call__(
        self,
        input_views: Any,
        target_azimuth: float | list[float] | torch.Tensor,
        input_azimuths: list[float] | list[list[float] | None] | None = None,
        num_inference_steps: int = 50,
        generator: torch.Generator | list[torch.Generator] | None = None,
        num_images_per_prompt: int = 1,
        weighting: bool = True,
        view_batch_size: int | None = None,
        drop_views_below: float | None = None,
        output_type: str = "pil",
        return_dict: bool = True,
        callback_on_step_end: Callable[[Any, int, int, dict], dict] | None = None,
        callback_on_step_end_tensor_inputs: list[str] = ["latents"],
    ) -> ViewFusionPipelineOutput | tuple:
        r"""
        Generate the view of each object seen from `target_azimuth`.

        Args:
            input_views: one object's views (a list of PIL images / arrays / tensors, or an `(N, 3, H, W)` tensor
                in [0, 1]), or a batch of objects: a list of such lists, each with its own number of views.
            target_azimuth (`float` or `list[float]`): azimuth of the view to generate, in degrees (NMR view `k`
                is `15 * k`), one for all objects or one per object. Without `input_azimuths` it is absolute, in
                the frame of the training data (where the light is fixed); with them, it is in their frame.
            input_azimuths (`list[float]` or `list[list[float] | None]`, *optional*): the azimuth of each input view
                in degrees, when known (a turntable, a scripted render, earlier generated views): one list per
                object, or `None` for an object whose views are unposed. Each (view, target) pair is then also
                conditioned on the angle from the view to the target. Needs a U-Net with `relative_pose=True`.
            num_inference_steps (`int`, defaults to 50): denoising steps.
            generator (`torch.Generator` or `list[torch.Generator]`, *optional*): for reproducible sampling; a list
                gives one generator per generated image (objects x `num_images_per_prompt`).
            num_images_per_prompt (`int`, defaults to 1): samples per object.
            weighting (`bool`, defaults to `True`): fuse with the learned weights; `False` averages the views'
                predictions (the paper's ablation).
            view_batch_size (`int`, *optional*): at most this many (object, view) pairs per U-Net call, to cap
                memory; the result does not depend on it.
            drop_views_below (`float`, *optional*): an approximation, off by default. After each step, a view
                whose mean fusion weight has fallen below this fraction of an equal share (`1 / n` for `n` views
                still in use) is left out of the remaining steps, so later steps cost less; each object keeps at
                least its best view. Its weight map in the output is zero. Must lie in (0, 1).
            output_type (`str`, defaults to `"pil"`): `"pil"`, `"np"` (`(B, H, W, 3)` in [0, 1]) or `"pt"`
                (`(B, 3, H, W)` in [0, 1]).
            return_dict (`bool`, defaults to `True`): return a [`ViewFusionPipelineOutput`] instead of a tuple.
            callback_on_step_end (`Callable`, *optional*): called as `callback(pipe, i, t, callback_kwargs)` after
                each step with the tensors named in `callback_on_step_end_tensor_inputs`; it may return a dict
                that replaces them.

        Example:
            ```py
            >>> import torch
            >>> from viewfusion_diffusers import ViewFusionPipeline

            >>> pipe = ViewFusionPipeline.from_pretrained("pipelines/viewfusion-pybullet-64")
            >>> out = pipe([view_0, view_90], target_azimuth=180.0, num_inference_steps=50,
            ...            generator=torch.Generator().manual_seed(0))
            >>> out.images[0].save("novel.png")
            ```

        Returns:
            [`ViewFusionPipelineOutput`] or `(images, view_weights)`.
        """
        # 0. check and prepare the inputs
        if output_type not in ("pil", "np", "pt"):
            raise ValueError(f"`output_type` must be 'pil', 'np' or 'pt', got {output_type!r}.")
        if num_inference_steps < 1 or num_images_per_prompt < 1:
            raise ValueError("`num_inference_steps` and `num_images_per_prompt` must be at least 1.")
        if view_batch_size is not None and view_batch_size < 1:
            raise ValueError(f"`view_batch_size` must be at least 1, got {view_batch_size}.")
        if drop_views_below is not None and not 0 < drop_views_below < 1:
            raise ValueError(f"`drop_views_below` is a fraction of an equal share and must lie in (0, 1), got {drop_views_below}.")
        if not (hasattr(self.scheduler, "step") and hasattr(self.scheduler, "set_timesteps")):
            raise TypeError(f"The scheduler must be a diffusers scheduler, got {type(self.scheduler).__name__}.")
        unknown = set(callback_on_step_end_tensor_inputs) - set(self._callback_tensor_inputs)
        if unknown:
            raise ValueError(f"Unknown callback tensor inputs {sorted(unknown)}; allowed: {self._callback_tensor_inputs}.")
        views, azimuths, input_azimuths = self.prepare_views(input_views, target_azimuth, input_azimuths)
        views = [v for v in views for _ in range(num_images_per_prompt)]
        azimuths = [a for a in azimuths for _ in range(num_images_per_prompt)]
        input_azimuths = [a for a in input_azimuths for _ in range(num_images_per_prompt)]
        batch_size = len(views)
        if isinstance(generator, list) and len(generator) != batch_size:
            raise ValueError(f"Got {len(generator)} generators for {batch_size} images; give one per image.")

        device, dtype = self._execution_device, self.unet.dtype
        num_views = torch.tensor([v.shape[0] for v in views], device=device)
        views_flat = torch.cat(views).to(device=device, dtype=dtype)
        view_owner = torch.repeat_interleave(torch.arange(batch_size, device=device), num_views)
        target_azimuths = torch.tensor(azimuths, device=device, dtype=torch.float64)
        # Each view's own azimuth, NaN for the views of unposed objects.
        view_azimuths = None
        if any(a is not None for a in input_azimuths):
            view_azimuths = torch.tensor([a for object_azimuths, v in zip(input_azimuths, views)
                                          for a in (object_azimuths or [float("nan")] * v.shape[0])],
                                         device=device, dtype=torch.float64)

        # 1. the noisy target starts as pure noise
        resolution = self.unet.config.sample_size
        latents = randn_tensor((batch_size, 3, resolution, resolution), generator=generator, device=device, dtype=dtype)
        latents = latents * self.scheduler.init_noise_sigma

        # The (object, view) pairs in use: all of them, unless `drop_views_below` leaves some out.
        active = torch.arange(views_flat.shape[0], device=device)
        pair_views, pair_view_azimuths, pair_owner, pair_counts = views_flat, view_azimuths, view_owner, num_views

        # Stochastic schedulers draw their noise from `generator`; deterministic ones (UniPC) take none.
        step_kwargs = {"generator": generator} if "generator" in inspect.signature(self.scheduler.step).parameters else {}
        self.scheduler.set_timesteps(num_inference_steps, device=device)
        for i, t in enumerate(self.progress_bar(self.scheduler.timesteps)):
            # 2. every (object, view) pair through the U-Net, in chunks of at most `view_batch_size`, then fused
            model_input = self.scheduler.scale_model_input(latents, t)
            fused, weights = predict_fused_noise(
                self.unet, pair_views, model_input, t, target_azimuths, pair_counts, view_azimuth=pair_view_azimuths,
                weighting=weighting, max_pairs=view_batch_size,
            )

            # 3. step: x_t -> x_t-1
            latents = self.scheduler.step(fused, t, latents, **step_kwargs).prev_sample

            if drop_views_below is not None and i + 1 < len(self.scheduler.timesteps):
                # A view's share is its mean weight times the number of views in use (1 = an equal share).
                # The best view of an object has a share of at least 1, so it is never dropped.
                share = weights[pad_mask(pair_counts)].float().mean(dim=(1, 2, 3)) * pair_counts[pair_owner]
                if bool((share < drop_views_below).any()):
                    active = active[share >= drop_views_below]
                    pair_views, pair_owner = views_flat[active], view_owner[active]
                    pair_view_azimuths = None if view_azimuths is None else view_azimuths[active]
                    pair_counts = torch.bincount(pair_owner, minlength=batch_size)

            if callback_on_step_end is not None:
                step_tensors = {"latents": latents}
                callback_kwargs = {k: step_tensors[k] for k in callback_on_step_end_tensor_inputs}
                callback_outputs = callback_on_step_end(self, i, t, callback_kwargs) or {}
                latents = callback_outputs.get("latents", latents)

        # 4. post-process
        images = (latents.float() / 2 + 0.5).clamp(0, 1)
        all_weights = weights.new_zeros((views_flat.shape[0], *weights.shape[2:]))
        all_weights[active] = weights[pad_mask(pair_counts)]
        view_weights = [w.float() for w in all_weights.split(num_views.tolist())]
        if output_type == "pt":
            images, view_weights = images.cpu(), [w.cpu() for w in view_weights]
        else:
            images = images.cpu().permute(0, 2, 3, 1).numpy()
            view_weights = [w.cpu().numpy() for w in view_weights]
            if output_type == "pil":
                images = self.numpy_to_pil(images)

        self.maybe_free_model_hooks()
        if not return_dict:
            return (images, view_weights)
        return ViewFusionPipelineOutput(images=images, view_weights=view_weights)
