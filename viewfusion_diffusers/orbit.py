"""The paper's autoregressive orbit: every generated view joins the inputs of the next azimuth."""

import os
from pathlib import Path
from typing import Callable

import PIL.Image
import torch


def sample_orbit(
    pipeline,
    input_views: list,
    num_frames: int = 24,
    start_azimuth: float = 0.0,
    num_inference_steps: int = 50,
    max_views: int = 6,
    seed: int = 0,
    on_frame: Callable[[int], None] | None = None,
) -> list[PIL.Image.Image]:
    """Generate `num_frames` views around the object, `360 / num_frames` degrees apart.

    The given views always stay among the inputs; the newest generated views fill the rest of the `max_views`
    budget, so each step costs at most `max(max_views, len(input_views))` U-Net passes however long the orbit.

    Example:
        ```py
        >>> frames = sample_orbit(pipe, [PIL.Image.open("front.png")], num_inference_steps=25)
        >>> frames[0].save("orbit.gif", save_all=True, append_images=frames[1:], duration=120, loop=0)
        ```
    """
    if max_views < 1:
        raise ValueError(f"max_views must be at least 1, got {max_views}.")
    generated = []
    for k in range(num_frames):
        budget = max(0, max_views - len(input_views))
        context = list(input_views) + (generated[-budget:] if budget else [])
        out = pipeline(context, start_azimuth + 360.0 * k / num_frames, num_inference_steps=num_inference_steps,
                       generator=torch.Generator().manual_seed(seed + k), output_type="pil")
        generated.append(out.images[0])
        if on_frame is not None:
            on_frame(k)
    return generated


def save_gif(frames: list[PIL.Image.Image], path, frame_ms: int = 120, size: int | None = None) -> None:
    """Write frames as a looping GIF (through a temporary file, then renamed), enlarged to `size` pixels."""
    if size is not None:
        frames = [frame.resize((size, size), PIL.Image.NEAREST) for frame in frames]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".tmp-{path.name}")
    frames[0].save(temporary, format="GIF", save_all=True, append_images=frames[1:], duration=frame_ms, loop=0)
    os.replace(temporary, path)
