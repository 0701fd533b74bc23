"""The paper's autoregressive orbit: every generated view joins the inputs of the next azimuth."""

import math
from typing import Callable

import PIL.Image
import torch

from .constants import NUM_VIEWS
from .file_utils import atomic_write


def frame_azimuths(num_frames: int = NUM_VIEWS, start_azimuth: float = 0.0) -> list[float]:
    """The azimuths in degrees of an orbit's frames, `360 / num_frames` apart from `start_azimuth`.

    Example:
        ```py
        >>> frame_azimuths(4, start_azimuth=10)
        [10.0, 100.0, 190.0, 280.0]
        ```
    """
    return [start_azimuth + 360.0 * k / num_frames for k in range(num_frames)]


def sample_orbit(
    pipeline,
    input_views: list,
    num_frames: int = NUM_VIEWS,
    start_azimuth: float = 0.0,
    num_inference_steps: int = 50,
    max_views: int = 6,
    seed: int = 0,
    on_frame: Callable[[int], None] | None = None,
    input_azimuths: list[float] | None = None,
) -> list[PIL.Image.Image]:
    """Generate `num_frames` views around the object, `360 / num_frames` degrees apart.

    The given views always stay among the inputs; the newest generated views fill the rest of the `max_views`
    budget, so each step costs at most `max(max_views, len(input_views))` U-Net passes however long the orbit.

    With a pipeline whose U-Net takes poses (`relative_pose=True`), every azimuth it knows is given to it: each
    generated frame's is its own target azimuth, and the input views' are `input_azimuths` (the frame azimuths
    are then in their frame) or unknown when `input_azimuths` is `None`. A pose-free pipeline takes no azimuths
    of views; `input_azimuths` must then be `None`.

    Example:
        ```py
        >>> from viewfusion_diffusers import ViewFusionPipeline
        >>> pipe = ViewFusionPipeline.from_pretrained("pipelines/viewfusion-pybullet-64")
        >>> pipe.set_progress_bar_config(disable=True)
        >>> front = PIL.Image.open("examples/views/object025_az000.png")
        >>> frames = sample_orbit(pipe, [front], num_frames=4, num_inference_steps=10)  # 24 frames of 50 for real
        >>> [frame.size for frame in frames]
        [(64, 64), (64, 64), (64, 64), (64, 64)]
        >>> frames[0].save("orbit.gif", save_all=True, append_images=frames[1:], duration=120, loop=0)
        ```
    """
    if max_views < 1:
        raise ValueError(f"max_views must be at least 1, got {max_views}.")
    if num_frames < 1:
        raise ValueError(f"num_frames must be at least 1, got {num_frames}.")
    posed = bool(getattr(pipeline.unet.config, "relative_pose", False))
    if input_azimuths is not None:
        input_azimuths = [float(a) for a in input_azimuths]
        if len(input_azimuths) != len(input_views):
            raise ValueError(
                f"Got {len(input_azimuths)} input_azimuths for {len(input_views)} input views; give one per view."
            )
        if not all(math.isfinite(a) for a in input_azimuths):
            raise ValueError(f"input_azimuths must be finite degrees, got {input_azimuths}.")
        if not posed:
            raise ValueError(
                "This pipeline's U-Net was trained without poses (relative_pose=False): leave input_azimuths=None."
            )
    generated, generated_azimuths = [], []
    for k, azimuth in enumerate(frame_azimuths(num_frames, start_azimuth)):
        budget = max(0, max_views - len(input_views))
        context = list(input_views) + (generated[-budget:] if budget else [])
        context_azimuths = None
        if posed:
            given = input_azimuths if input_azimuths is not None else [None] * len(input_views)
            context_azimuths = list(given) + (generated_azimuths[-budget:] if budget else [])
        out = pipeline(
            context,
            azimuth,
            input_azimuths=context_azimuths,
            num_inference_steps=num_inference_steps,
            generator=torch.Generator().manual_seed(seed + k),
            output_type="pil",
        )
        generated.append(out.images[0])
        generated_azimuths.append(azimuth)
        if on_frame is not None:
            on_frame(k)
    return generated


def save_gif(frames: list[PIL.Image.Image], path, frame_ms: int = 120, size: int | None = None) -> None:
    """Write frames as a looping GIF (atomically), enlarged to `size` pixels.

    Example:
        ```py
        >>> frames = [PIL.Image.open(f"examples/views/object025_az{azimuth:03d}.png") for azimuth in (0, 90, 180)]
        >>> save_gif(frames, "orbit.gif", frame_ms=150, size=192)  # frames from `sample_orbit`, say
        >>> PIL.Image.open("orbit.gif").size
        (192, 192)
        ```
    """
    if not frames:
        raise ValueError("save_gif got no frames; an orbit has at least one.")
    if size is not None:
        frames = [frame.resize((size, size), PIL.Image.NEAREST) for frame in frames]
    with atomic_write(path, "wb") as f:
        frames[0].save(f, format="GIF", save_all=True, append_images=frames[1:], duration=frame_ms, loop=0)
