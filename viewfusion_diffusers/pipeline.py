"""`ViewFusionPipeline`: sample a novel view of an object from any number of input views, posed or not."""

import inspect
import numbers
import os
import re
import warnings
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import PIL.Image
import torch
from diffusers import DiffusionPipeline
from diffusers.callbacks import MultiPipelineCallbacks, PipelineCallback
from diffusers.schedulers.scheduling_utils import SchedulerMixin
from diffusers.utils import BaseOutput, replace_example_docstring
from diffusers.utils.torch_utils import randn_tensor

from .constants import TRAINING_MAX_VIEWS
from .fusion import pad_mask, predict_fused_noise
from .hub_utils import (
    DOWNLOAD_KWARGS,
    REPAIR_HINT,
    PipelineFolderError,
    check_pipeline_folder,
    download_pipeline,
    local_or_hub_file,
    write_custom_pipeline_file,
)
from .image_processor import OUTPUT_TYPES, ViewProcessor
from .unet import ViewFusionUNet2DModel


@dataclass
class ViewFusionPipelineOutput(BaseOutput):
    """
    Output of [`ViewFusionPipeline`].

    Args:
        images (`list[PIL.Image.Image]`, `np.ndarray` or `torch.Tensor`):
            The novel views, one per object and sample (`num_images_per_prompt`), in [0, 1] for "np" / "pt",
            in model space (about [-1, 1]) for "latent".
        view_weights (`list[np.ndarray]` or `list[torch.Tensor]`):
            For each image, the fusion weights of its input views at the last denoising step, `(N, 3, H, W)`,
            summing to one over the views at every pixel and channel.
    """

    images: list[PIL.Image.Image] | np.ndarray | torch.Tensor
    view_weights: list[np.ndarray] | list[torch.Tensor]


EXAMPLE_DOC_STRING = """
    Examples:
        ```py
        >>> import PIL.Image
        >>> import torch
        >>> from viewfusion_diffusers import ViewFusionPipeline

        >>> # From the repository's root: the shipped pipeline and two views of a test object.
        >>> pipe = ViewFusionPipeline.from_pretrained("pipelines/viewfusion-pybullet-64")
        >>> views = [PIL.Image.open(f"examples/views/object025_az{azimuth:03d}.png") for azimuth in (0, 90)]
        >>> out = pipe(views, target_azimuth=180.0, num_inference_steps=50, generator=torch.Generator().manual_seed(0))
        >>> out.images[0].save("novel.png")
        ```
"""


def as_height_width(sample_size: int | tuple[int, int] | list[int]) -> tuple[int, int]:
    """A U-Net's `sample_size`, an `int` (square) or `(height, width)`, as `(height, width)`.

    Example:
        ```py
        >>> as_height_width(64), as_height_width([32, 48])
        ((64, 64), (32, 48))
        ```
    """
    if isinstance(sample_size, int):
        return sample_size, sample_size
    height, width = sample_size
    return int(height), int(width)


def _is_positive_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= 1


class ViewFusionPipeline(DiffusionPipeline):
    r"""
    Pipeline for novel view synthesis with ViewFusion (composable diffusion over unposed input views).

    This model inherits from [`DiffusionPipeline`]. Check the superclass documentation for the generic methods
    implemented for all pipelines (downloading, saving, running on a particular device, etc.).

    At every denoising step each input view, concatenated with the current noisy target, goes through the
    shared U-Net (all views of all objects in one batch); the per-view noise predictions are fused with a
    per-pixel softmax over the views' weight logits ([`fuse_noise`]); the scheduler takes one step with the
    fused prediction. Views go in and images come out through [`ViewProcessor`] (`pipe.view_processor`).

    Parameters:
        unet ([`ViewFusionUNet2DModel`]): the denoiser, returning noise and weight logits per view. Its
            `sample_size` (an `int`, or `(height, width)`) is the size of the generated views.
        scheduler ([`SchedulerMixin`]): any diffusers scheduler; the default is the paper's [`DDPMScheduler`],
            which samples ancestrally on `num_inference_steps` of its training steps (2,000 in the paper).
            Swap it with e.g. `DDIMScheduler.from_config(pipe.scheduler.config)` for a deterministic sampler.

    Load a folder or Hub repo with [`~ViewFusionPipeline.from_pretrained`], the authors' original checkpoint with
    [`~ViewFusionPipeline.from_single_file`]. `DiffusionPipeline.from_pretrained(folder, custom_pipeline=folder,
    trust_remote_code=True)` loads a saved folder too, through the `pipeline.py` that `save_pretrained` writes.

    Example:
        ```py
        >>> import PIL.Image
        >>> pipe = ViewFusionPipeline.from_pretrained("pipelines/viewfusion-pybullet-64")
        >>> views = [PIL.Image.open(f"examples/views/object025_az{azimuth:03d}.png") for azimuth in (0, 90)]
        >>> image = pipe(views, target_azimuth=180.0).images[0]  # see `__call__` for the options
        >>> image.size
        (64, 64)
        ```
    """

    model_cpu_offload_seq = "unet"
    # Only the noisy target is state the loop carries from step to step, so it is what a callback may read and
    # replace. The fused noise and the view weights are recomputed from it at every step: a callback that
    # changed them would change nothing.
    _callback_tensor_inputs = ["latents"]

    def __init__(self, unet: ViewFusionUNet2DModel, scheduler: SchedulerMixin):
        super().__init__()
        self.register_modules(unet=unet, scheduler=scheduler)
        self.view_processor = ViewProcessor(pixel_range=tuple(unet.config.pixel_range))

    @property
    def sample_size(self) -> tuple[int, int]:
        """The `(height, width)` of the generated views (the U-Net's `sample_size`)."""
        return as_height_width(self.unet.config.sample_size)

    @property
    def num_timesteps(self) -> int:
        """The number of denoising steps of the last call (the scheduler's timesteps)."""
        return self._num_timesteps

    @property
    def interrupt(self) -> bool:
        """Set `pipe._interrupt = True` (e.g. from a callback) to skip the remaining steps of the current call."""
        return self._interrupt

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike, **kwargs):
        r"""Load a pipeline from a local folder or a Hub repo id.

        A repo id is first fetched with `huggingface_hub.snapshot_download` (honouring `revision`, `cache_dir`,
        `token`, `force_download`, `proxies`, `local_files_only` and `HF_HUB_OFFLINE`), fetching only the
        index, the configs and the weights of the requested `variant`; then it is loaded as a local folder. A folder
        saved by a subclass of this pipeline, or by a pipeline this class derives from, loads; one saved by any
        other pipeline is refused.

        Example:
            ```py
            >>> pipe = ViewFusionPipeline.from_pretrained("pipelines/viewfusion-pybullet-64")  # a folder
            >>> pipe = ViewFusionPipeline.from_pretrained("pipelines/viewfusion-pybullet-64", torch_dtype=torch.half)
            >>> pipe.unet.dtype
            torch.float16
            ```
        """
        path = os.fspath(pretrained_model_name_or_path)
        download_kwargs = {key: kwargs.pop(key) for key in DOWNLOAD_KWARGS if key in kwargs}
        if os.path.isdir(path):
            folder = path
        elif os.path.exists(path):
            raise ValueError(f"{path} is a file; pass the pipeline folder (the one holding model_index.json).")
        else:
            folder = download_pipeline(path, kwargs.get("variant"), kwargs.get("use_safetensors"), **download_kwargs)
        if not os.path.isfile(os.path.join(folder, "model_index.json")):
            raise ValueError(f"{path} is not a pipeline folder: it has no model_index.json.")
        class_name = check_pipeline_folder(folder).get("_class_name")
        if class_name not in cls._loadable_class_names():
            raise ValueError(
                f"{path} holds a {class_name!r} pipeline, not a {cls.__name__}; "
                "point to a folder written by ViewFusionPipeline.save_pretrained."
            )
        try:
            return super().from_pretrained(folder, **kwargs)
        except ValueError as error:  # diffusers' advice (ignore_mismatched_sizes) would load random weights
            mismatch = re.search(r"because (\S+) expected shape (.+?\)), but got (.+?\))", str(error))
            if mismatch is None:
                raise
            weight, expected, found = mismatch.groups()
            raise PipelineFolderError(
                f"{folder}: the weights do not match their config.json ({weight} is {found}, the config asks for "
                f"{expected}); {REPAIR_HINT}."
            ) from error

    @classmethod
    def _loadable_class_names(cls) -> set[str]:
        # Folders saved by this class or a ViewFusion base of it, or by any subclass defined in this program.
        names = {base.__name__ for base in cls.__mro__ if issubclass(base, ViewFusionPipeline)}
        subclasses = list(cls.__subclasses__())
        while subclasses:
            subclass = subclasses.pop()
            names.add(subclass.__name__)
            subclasses += subclass.__subclasses__()
        return names

    @classmethod
    def from_single_file(
        cls,
        pretrained_model_link_or_path: str | os.PathLike,
        config_file: str | os.PathLike | None = None,
        torch_dtype: torch.dtype | None = None,
        **kwargs,
    ):
        r"""Load a checkpoint of the authors' code (their `best_model_all.pt`), converted on the fly.

        The network becomes a [`ViewFusionUNet2DModel`] conditioned on the noise level, as theirs is, and the
        schedule of `config_file` (their YAML; by default the configuration they published with the paper's model)
        a `DDPMScheduler`; see [`convert_original_checkpoint`]. The file is read with `torch.load(weights_only=True)`
        only. `save_pretrained` then writes an ordinary pipeline folder (or run `viewfusion convert`).

        Args:
            pretrained_model_link_or_path: a local file, a Hub file `owner/repo/file.pt`, or its
                `https://huggingface.co/...` address (fetched with `hf_hub_download`).
            config_file (*optional*): the authors' config the checkpoint was trained with, local or on the Hub.
            torch_dtype (*optional*): the dtype of the U-Net's weights (float32 otherwise).
            kwargs: Hub download arguments (`revision`, `cache_dir`, `token`, `force_download`, `proxies`,
                `local_files_only`).

        Example:
            ```py
            >>> # The paper's model: ViewFusionPipeline.from_single_file("bronemos/view-fusion/best_model_all.pt").
            >>> # A small checkpoint of the same format, trained on 16x16 views, with the config it was trained with:
            >>> pipe = ViewFusionPipeline.from_single_file("tests/data/original-viewfusion/tiny/best_model_all.pt",
            ...                                            "tests/data/original-viewfusion/tiny/config.yaml")
            >>> pipe.unet.config.conditioning, pipe.unet.config.sample_size
            ('noise_level', 16)
            >>> pipe.save_pretrained("outputs/viewfusion-tiny")  # an ordinary pipeline folder from now on
            ```
        """
        from .conversion import convert_original_checkpoint

        download_kwargs = {key: kwargs.pop(key) for key in DOWNLOAD_KWARGS if key in kwargs}
        if kwargs:
            raise TypeError(
                f"from_single_file got unexpected arguments {sorted(kwargs)}; it takes {list(DOWNLOAD_KWARGS)}."
            )
        checkpoint = local_or_hub_file(pretrained_model_link_or_path, **download_kwargs)
        config = None if config_file is None else local_or_hub_file(config_file, **download_kwargs)
        pipeline = cls(**convert_original_checkpoint(checkpoint, config))
        return pipeline if torch_dtype is None else pipeline.to(dtype=torch_dtype)

    def save_pretrained(self, save_directory: str | os.PathLike, **kwargs) -> None:
        """`DiffusionPipeline.save_pretrained`, plus the folder's `pipeline.py` for diffusers' own loader (written
        first, so that `push_to_hub=True` uploads it too).

        Example:
            ```py
            >>> pipe = ViewFusionPipeline.from_pretrained("pipelines/viewfusion-pybullet-64")
            >>> pipe.save_pretrained("outputs/my-pipeline")
            >>> sorted(os.listdir("outputs/my-pipeline"))
            ['model_index.json', 'pipeline.py', 'scheduler', 'unet']
            ```
        """
        os.makedirs(save_directory, exist_ok=True)
        write_custom_pipeline_file(save_directory)
        super().save_pretrained(save_directory, **kwargs)

    def noise_level(self, timestep) -> torch.Tensor | None:
        """`alpha_bar` of the scheduler at `timestep`, for a U-Net conditioned on the noise level (else `None`).

        Example:
            ```py
            >>> pipe = ViewFusionPipeline.from_single_file("tests/data/original-viewfusion/tiny/best_model_all.pt",
            ...                                            "tests/data/original-viewfusion/tiny/config.yaml")
            >>> pipe.noise_level(torch.tensor(49))  # the authors' networks see alpha_bar, not the timestep
            tensor(0.0046)
            >>> print(ViewFusionPipeline.from_pretrained("pipelines/viewfusion-pybullet-64").noise_level(999))
            None
            ```
        """
        if self.unet.config.conditioning != "noise_level":
            return None
        if not float(timestep).is_integer():
            raise ValueError(
                f"{type(self.scheduler).__name__} gave the timestep {float(timestep)}; a U-Net conditioned "
                "on the noise level needs a scheduler of integer timesteps (DDPM, DDIM, DPM-Solver, UniPC)."
            )
        return self.scheduler.alphas_cumprod[int(timestep)]

    def check_inputs(
        self,
        num_inference_steps,
        num_images_per_prompt,
        view_batch_size,
        output_type,
        callback_on_step_end_tensor_inputs,
    ) -> None:
        """Check the arguments that are not views or azimuths (those are checked as [`prepare_views`] converts them,
        the generators and `latents` by [`prepare_latents`]); each error names the argument and the fix.

        Example:
            ```py
            >>> pipe = ViewFusionPipeline.from_pretrained("pipelines/viewfusion-pybullet-64")
            >>> pipe.check_inputs(0, 1, None, "pil", ["latents"])
            Traceback (most recent call last):
            ValueError: `num_inference_steps` must be a positive integer (the number of denoising steps), got 0.
            ```
        """
        if not _is_positive_int(num_inference_steps):
            raise ValueError(
                "`num_inference_steps` must be a positive integer (the number of denoising steps), got "
                f"{num_inference_steps!r}."
            )
        if not _is_positive_int(num_images_per_prompt):
            raise ValueError(
                "`num_images_per_prompt` must be a positive integer (samples per object), got "
                f"{num_images_per_prompt!r}."
            )
        if output_type not in OUTPUT_TYPES:
            raise ValueError(
                f"`output_type` must be one of {', '.join(map(repr, OUTPUT_TYPES))}, got {output_type!r}."
            )
        if view_batch_size is not None and not _is_positive_int(view_batch_size):
            raise ValueError(f"`view_batch_size` must be a positive integer or None, got {view_batch_size!r}.")
        if not (hasattr(self.scheduler, "step") and hasattr(self.scheduler, "set_timesteps")):
            raise TypeError(f"The scheduler must be a diffusers scheduler, got {type(self.scheduler).__name__}.")
        unknown = [k for k in callback_on_step_end_tensor_inputs or [] if k not in self._callback_tensor_inputs]
        if unknown:
            raise ValueError(
                f"`callback_on_step_end_tensor_inputs` has {unknown}, which this pipeline does not pass; "
                f"choose from {self._callback_tensor_inputs}."
            )

    def prepare_views(self, input_views, target_azimuth, input_azimuths, num_images_per_prompt: int, device, dtype):
        """Every (generated image, input view) pair of the call, flattened as the U-Net takes them.

        `input_views` is one object's views or a batch of objects (see `__call__`); each object is repeated
        `num_images_per_prompt` times. Degrees are reduced mod 360 in float64 on the host before they become
        float32, so 1e9 degrees and its remainder give the same view (and no device needs float64).

        Returns:
            `(views, num_views, target_azimuths, view_azimuths)`: `(sum N, 3, H, W)` views in the U-Net's pixel
            range, `(B,)` view counts, `(B,)` target azimuths and `(sum N,)` view azimuths (NaN where unknown; `None`
            when no view's azimuth is given), in degrees.

        Example:
            ```py
            >>> import PIL.Image
            >>> pipe = ViewFusionPipeline.from_pretrained("pipelines/viewfusion-pybullet-64")
            >>> view_a, view_b = (PIL.Image.open(f"examples/views/object025_az{a:03d}.png") for a in (0, 90))
            >>> views, num_views, target_azimuths, view_azimuths = pipe.prepare_views([view_a, view_b], 90.0, None, 1,
            ...                                                                       "cpu", torch.float32)
            >>> views.shape, num_views.tolist(), view_azimuths
            (torch.Size([2, 3, 64, 64]), [2], None)
            ```
        """
        objects, is_batch = self._split_objects(input_views)
        names = [f"input_views[{i}]" if is_batch else "input_views" for i in range(len(objects))]
        azimuths = self._target_azimuths(target_azimuth, len(objects))
        per_object_azimuths = self.prepare_input_azimuths(
            input_azimuths, [self._num_views(v) for v in objects], is_batch
        )
        views = [self.view_processor.preprocess(v, *self.sample_size, name=name) for v, name in zip(objects, names)]
        for object_views, name in zip(views, names):
            if len(object_views) > 2 * TRAINING_MAX_VIEWS:
                # Each step runs the U-Net once per view, so the time grows with the count.
                warnings.warn(
                    f"{name} has {len(object_views)} views; the model was trained with 1 to {TRAINING_MAX_VIEWS}. "
                    "Sampling "
                    f"will take about {len(object_views) / TRAINING_MAX_VIEWS:.0f}x as long as with "
                    f"{TRAINING_MAX_VIEWS} "
                    "views (the U-Net runs once per view and step).",
                    stacklevel=3,
                )

        views, azimuths, per_object_azimuths = (
            [entry for entry in per_object for _ in range(num_images_per_prompt)]
            for per_object in (views, azimuths, per_object_azimuths)
        )
        num_views = torch.tensor([v.shape[0] for v in views], device=device)
        target_azimuths = torch.tensor(np.remainder(azimuths, 360.0), device=device, dtype=torch.float32)
        view_azimuths = None
        if any(a is not None for a in per_object_azimuths):
            flat = [
                a
                for object_azimuths, v in zip(per_object_azimuths, views)
                for a in (object_azimuths or [np.nan] * v.shape[0])
            ]
            view_azimuths = torch.tensor(np.remainder(flat, 360.0), device=device, dtype=torch.float32)
        return torch.cat(views).to(device=device, dtype=dtype), num_views, target_azimuths, view_azimuths

    def _split_objects(self, input_views) -> tuple[list, bool]:
        """`input_views` as a list of objects (each one object's views) and whether it was a batch."""
        if isinstance(input_views, torch.Tensor) and input_views.ndim == 5:
            input_views = list(input_views)
        if isinstance(input_views, (list, tuple)) and len(input_views) == 0:
            raise ValueError("`input_views` is empty; give at least one view of the object.")
        is_batch = isinstance(input_views, (list, tuple)) and (
            isinstance(input_views[0], (list, tuple)) or (torch.is_tensor(input_views[0]) and input_views[0].ndim == 4)
        )
        return (list(input_views) if is_batch else [input_views]), is_batch

    @staticmethod
    def _num_views(views) -> int:
        if isinstance(views, torch.Tensor) and views.ndim == 4:
            return views.shape[0]
        return len(views) if isinstance(views, (list, tuple)) else 1

    @staticmethod
    def _target_azimuths(target_azimuth, num_objects: int) -> list[float]:
        """One target azimuth per object, in float64 degrees."""
        if isinstance(target_azimuth, torch.Tensor):
            target_azimuth = target_azimuth.detach().cpu().double().tolist()
        try:
            azimuths = np.asarray(target_azimuth, dtype=np.float64).reshape(-1).tolist()
        except (TypeError, ValueError):
            raise TypeError(
                f"`target_azimuth` must be a number of degrees or a list of them, got {target_azimuth!r}."
            ) from None
        if len(azimuths) == 1:
            azimuths = azimuths * num_objects
        if len(azimuths) != num_objects:
            raise ValueError(f"Got {num_objects} objects but {len(azimuths)} target azimuths; give one per object.")
        if not all(np.isfinite(azimuths)):
            raise ValueError(f"`target_azimuth` must be finite degrees, got {azimuths}.")
        return azimuths

    def prepare_input_azimuths(self, input_azimuths, num_views: list[int], is_batch: bool) -> list[list[float] | None]:
        """Check `input_azimuths` against the objects' numbers of views: per object one azimuth per view, or `None`.

        Example:
            ```py
            >>> pipe = ViewFusionPipeline.from_pretrained("pipelines/viewfusion-pybullet-64")
            >>> pipe.prepare_input_azimuths([0.0, 90.0], num_views=[2], is_batch=False)
            [[0.0, 90.0]]
            ```
        """
        if input_azimuths is None:
            return [None] * len(num_views)
        if not self.unet.config.relative_pose:
            raise ValueError(
                "This pipeline's U-Net was trained without poses (relative_pose=False): leave `input_azimuths=None`."
            )
        if isinstance(input_azimuths, torch.Tensor):
            input_azimuths = input_azimuths.detach().cpu().double().tolist()
        per_object = list(input_azimuths) if is_batch else [input_azimuths]
        if len(per_object) != len(num_views):
            raise ValueError(
                f"Got {len(num_views)} objects but {len(per_object)} entries in `input_azimuths`; give one per object."
            )
        checked = []
        for i, (azimuths, count) in enumerate(zip(per_object, num_views)):
            name = f"input_azimuths[{i}]" if is_batch else "input_azimuths"
            if azimuths is None:
                checked.append(None)
                continue
            if isinstance(azimuths, (int, float)) or (isinstance(azimuths, np.ndarray) and azimuths.ndim == 0):
                azimuths = [azimuths]
            try:
                # `None` marks a single view of unknown azimuth (e.g. the given view among an orbit's generated ones).
                known = [a is not None for a in azimuths]
                values = np.asarray([np.nan if a is None else a for a in azimuths], dtype=np.float64).reshape(-1)
            except (TypeError, ValueError):
                raise TypeError(f"`{name}` must be a list of degrees, one per input view, got {azimuths!r}.") from None
            if len(values) != count:
                raise ValueError(f"`{name}` has {len(values)} azimuths for {count} input views; give one per view.")
            if not np.isfinite(values[known]).all():
                raise ValueError(
                    f"`{name}` must be finite degrees (or None for a view of unknown azimuth), got {azimuths}."
                )
            checked.append(values.tolist())
        return checked

    def prepare_latents(self, batch_size, dtype, device, generator, latents=None) -> torch.Tensor:
        """The starting noisy targets: `latents` if given (moved to `device` / `dtype`), else fresh noise from
        `generator`; scaled by the scheduler's `init_noise_sigma`, as in diffusers' pipelines. A list of generators
        must hold one per image, and `latents` one `(3, height, width)` noise per image.

        Example:
            ```py
            >>> pipe = ViewFusionPipeline.from_pretrained("pipelines/viewfusion-pybullet-64")
            >>> pipe.prepare_latents(2, torch.float32, "cpu", torch.Generator().manual_seed(0)).shape
            torch.Size([2, 3, 64, 64])
            ```
        """
        if isinstance(generator, list) and len(generator) != batch_size:
            raise ValueError(
                f"Got {len(generator)} generators for {batch_size} images (objects x num_images_per_prompt); "
                "give one per image, or a single generator."
            )
        shape = (batch_size, 3, *self.sample_size)
        if latents is None:
            latents = randn_tensor(shape, generator=generator, device=device, dtype=dtype)
        elif not isinstance(latents, torch.Tensor) or tuple(latents.shape) != shape:
            got = tuple(latents.shape) if isinstance(latents, torch.Tensor) else type(latents).__name__
            raise ValueError(
                f"`latents` is {got}; expected a tensor of shape {shape}: one (3, height, width) starting "
                "noise per generated image (objects x num_images_per_prompt), at the U-Net's sample_size."
            )
        else:
            latents = latents.to(device=device, dtype=dtype)
        return latents * self.scheduler.init_noise_sigma

    @torch.no_grad()
    @replace_example_docstring(EXAMPLE_DOC_STRING)
    def __call__(
        self,
        input_views: Any,
        target_azimuth: float | list[float] | torch.Tensor,
        input_azimuths: list[float] | list[list[float] | None] | None = None,
        num_inference_steps: int = 50,
        generator: torch.Generator | list[torch.Generator] | None = None,
        latents: torch.Tensor | None = None,
        num_images_per_prompt: int = 1,
        weighting: bool = True,
        view_batch_size: int | None = None,
        output_type: str = "pil",
        return_dict: bool = True,
        callback_on_step_end: Callable[[Any, int, int, dict], dict]
        | PipelineCallback
        | MultiPipelineCallbacks
        | None = None,
        callback_on_step_end_tensor_inputs: list[str] = ["latents"],
    ) -> ViewFusionPipelineOutput | tuple:
        r"""
        Generate the view of each object seen from `target_azimuth`.

        Args:
            input_views: one object's views (a list of PIL images / arrays / tensors, or an `(N, 3, H, W)` tensor
                in [0, 1]), or a batch of objects: a list of such lists, each with its own number of views. Views
                of another size are resized to the U-Net's `sample_size`; their aspect ratio must be its own.
            target_azimuth (`float` or `list[float]`): azimuth of the view to generate, in degrees (NMR view `k`
                is `15 * k`), one for all objects or one per object. Without `input_azimuths` it is absolute, in
                the frame of the training data (where the light is fixed); with them, it is in their frame.
            input_azimuths (`list[float]` or `list[list[float] | None]`, *optional*): the azimuth of each input view
                in degrees, when known (a turntable, a scripted render, earlier generated views): one list per
                object, or `None` for an object whose views are unposed (`None` inside a list marks one view of
                unknown azimuth). Each (view, target) pair is then also conditioned on the angle from the view to
                the target. Needs a U-Net with `relative_pose=True`.
            num_inference_steps (`int`, defaults to 50): denoising steps.
            generator (`torch.Generator` or `list[torch.Generator]`, *optional*): for reproducible sampling; a list
                gives one generator per generated image (objects x `num_images_per_prompt`).
            latents (`torch.Tensor`, *optional*): your own starting noise, `(objects x num_images_per_prompt, 3,
                height, width)` at the U-Net's `sample_size`, standard normal; it is scaled by the scheduler's
                `init_noise_sigma`. Stochastic schedulers still draw their per-step noise from `generator`.
            num_images_per_prompt (`int`, defaults to 1): samples per object.
            weighting (`bool`, defaults to `True`): fuse with the learned weights; `False` averages the views'
                predictions (the paper's ablation).
            view_batch_size (`int`, *optional*): at most this many (object, view) pairs per U-Net call, to cap
                memory; the result does not depend on it.
            output_type (`str`, defaults to `"pil"`): `"pil"`, `"np"` (`(B, H, W, 3)` in [0, 1]), `"pt"`
                (`(B, 3, H, W)` in [0, 1]) or `"latent"` (the final `(B, 3, H, W)` tensor in model space, the U-Net's
                `pixel_range`, unprocessed, on the pipeline's device; the view weights stay tensors too).
            return_dict (`bool`, defaults to `True`): return a [`ViewFusionPipelineOutput`] instead of a tuple.
            callback_on_step_end (`Callable`, `PipelineCallback` or `MultiPipelineCallbacks`, *optional*): called
                as `callback(pipe, i, t, callback_kwargs)` after each step with the tensors named in
                `callback_on_step_end_tensor_inputs`; the dict it returns replaces them. It may set
                `pipe._interrupt = True` to skip the remaining steps.
            callback_on_step_end_tensor_inputs (`list[str]`, defaults to `["latents"]`): the tensors passed to
                the callback, from `pipe._callback_tensor_inputs`; a `PipelineCallback` brings its own
                `tensor_inputs`, which are used instead.

        Examples:

        Returns:
            [`ViewFusionPipelineOutput`] or `(images, view_weights)`.
        """
        # 0. check the inputs
        if isinstance(callback_on_step_end, (PipelineCallback, MultiPipelineCallbacks)):
            callback_on_step_end_tensor_inputs = callback_on_step_end.tensor_inputs
        self.check_inputs(
            num_inference_steps,
            num_images_per_prompt,
            view_batch_size,
            output_type,
            callback_on_step_end_tensor_inputs,
        )
        self._interrupt = False
        device, dtype = self._execution_device, self.unet.dtype

        # 1. the views of every generated image, as one batch of (image, view) pairs
        views, num_views, target_azimuths, view_azimuths = self.prepare_views(
            input_views, target_azimuth, input_azimuths, num_images_per_prompt, device, dtype
        )

        # 2. the noisy targets start as pure noise
        latents = self.prepare_latents(len(num_views), dtype, device, generator, latents)

        # Stochastic schedulers draw their noise from `generator`; deterministic ones (UniPC) take none.
        step_kwargs = (
            {"generator": generator} if "generator" in inspect.signature(self.scheduler.step).parameters else {}
        )
        self.scheduler.set_timesteps(num_inference_steps, device=device)
        self._num_timesteps = len(self.scheduler.timesteps)
        for i, t in enumerate(self.progress_bar(self.scheduler.timesteps)):
            if self.interrupt:
                continue

            # 3. predict the fused noise: every pair through the U-Net (in chunks of `view_batch_size`), fused per
            # image
            model_input = self.scheduler.scale_model_input(latents, t)
            noise_pred, weights = predict_fused_noise(
                self.unet,
                views,
                model_input,
                t,
                target_azimuths,
                num_views,
                view_azimuth=view_azimuths,
                noise_level=self.noise_level(t),
                weighting=weighting,
                max_pairs=view_batch_size,
            )

            # 4. compute the previous noisy target: x_t -> x_t-1
            latents = self.scheduler.step(noise_pred, t, latents, **step_kwargs, return_dict=False)[0]

            if callback_on_step_end is not None:
                callback_kwargs = {name: {"latents": latents}[name] for name in callback_on_step_end_tensor_inputs}
                callback_outputs = callback_on_step_end(self, i, t, callback_kwargs) or {}
                latents = callback_outputs.pop("latents", latents)

        # 5. post-process: the images, and each image's view weights of the last step
        images = self.view_processor.postprocess(latents, output_type=output_type)
        view_weights = [w.float() for w in weights[pad_mask(num_views)].split(num_views.tolist())]
        if output_type != "latent":
            view_weights = [w.cpu() if output_type == "pt" else w.cpu().numpy() for w in view_weights]

        self.maybe_free_model_hooks()
        if not return_dict:
            return (images, view_weights)
        return ViewFusionPipelineOutput(images=images, view_weights=view_weights)
