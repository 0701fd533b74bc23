"""Turning user-supplied views into model tensors, and model tensors back into pictures.

Accepted views: PIL images (RGB, RGBA, grayscale, palette), numpy arrays `(H, W)`, `(H, W, 3)` or
`(H, W, 4)` (uint8 in [0, 255], or float in [0, 1]), and torch tensors `(3, H, W)` or `(4, H, W)` (float in
[0, 1], or uint8). Transparent pixels are composited on white, as in the training renders. A view whose
size differs from the model's resolution is resized (bicubic, antialiased) with a warning; a non-square view
is refused, because resizing would distort the object.
"""

import warnings

import numpy as np
import PIL.Image
import torch
import torch.nn.functional as F

ViewLike = PIL.Image.Image | np.ndarray | torch.Tensor


def _view_to_float_tensor(view: ViewLike, name: str) -> torch.Tensor:
    """One view as a float `(C, H, W)` tensor in [0, 1], C in {1, 3, 4}."""
    if isinstance(view, PIL.Image.Image):
        if view.mode not in ("RGB", "RGBA", "L"):
            view = view.convert("RGBA")
        array = np.asarray(view)
        tensor = torch.from_numpy(array.copy()).float() / 255.0
        return tensor[None] if tensor.ndim == 2 else tensor.permute(2, 0, 1)
    if isinstance(view, np.ndarray):
        if view.ndim == 3 and view.shape[-1] in (1, 3, 4):
            view = view.transpose(2, 0, 1)
        elif view.ndim != 2:
            raise ValueError(f"{name} is an array of shape {view.shape}; expected (H, W), (H, W, 3) or (H, W, 4).")
        tensor = torch.from_numpy(np.ascontiguousarray(view))
        tensor = tensor[None] if tensor.ndim == 2 else tensor
    elif isinstance(view, torch.Tensor):
        tensor = view.detach().cpu()
        if tensor.ndim == 2:
            tensor = tensor[None]
        if tensor.ndim != 3 or tensor.shape[0] not in (1, 3, 4):
            raise ValueError(f"{name} is a tensor of shape {tuple(view.shape)}; expected (3, H, W) or (4, H, W).")
    else:
        raise TypeError(f"{name} has type {type(view).__name__}; pass a PIL image, a numpy array or a torch tensor.")
    if tensor.dtype == torch.uint8:
        return tensor.float() / 255.0
    if not tensor.is_floating_point():
        raise TypeError(f"{name} has dtype {tensor.dtype}; use uint8 in [0, 255] or float in [0, 1].")
    tensor = tensor.float()
    if not torch.isfinite(tensor).all():
        raise ValueError(f"{name} contains NaN or infinite values.")
    if tensor.min() < -1e-3 or tensor.max() > 1 + 1e-3:
        raise ValueError(
            f"{name} has values in [{tensor.min():.3g}, {tensor.max():.3g}]; float views must lie in [0, 1]."
        )
    return tensor.clamp(0, 1)


def to_rgb_on_white(tensor: torch.Tensor) -> torch.Tensor:
    """`(C, H, W)` in [0, 1] with C in {1, 3, 4} -> `(3, H, W)`: gray is repeated, alpha composited on white."""
    if tensor.shape[0] == 1:
        return tensor.expand(3, -1, -1)
    if tensor.shape[0] == 4:
        rgb, alpha = tensor[:3], tensor[3:]
        return rgb * alpha + (1 - alpha)
    return tensor


def preprocess_views(views, resolution: int, name: str = "input_views") -> torch.Tensor:
    """Convert one object's views to a `(N, 3, resolution, resolution)` float tensor in [-1, 1].

    Args:
        views: a list of PIL images / arrays / tensors, or a single `(N, 3, H, W)` tensor in [0, 1].
        resolution (`int`): the model's image size.
        name (`str`): how errors refer to these views.

    Example:
        ```py
        >>> import PIL.Image
        >>> preprocess_views([PIL.Image.new("RGBA", (64, 64))], resolution=64).shape
        torch.Size([1, 3, 64, 64])
        ```
    """
    if isinstance(views, torch.Tensor) and views.ndim == 4:
        views = list(views)
    elif not isinstance(views, (list, tuple)):
        views = [views]
    if len(views) == 0:
        raise ValueError(f"{name} is empty; give at least one view of the object.")
    processed = []
    for i, view in enumerate(views):
        tensor = to_rgb_on_white(_view_to_float_tensor(view, f"{name}[{i}]"))
        height, width = tensor.shape[-2:]
        if height != width:
            raise ValueError(
                f"{name}[{i}] is {width}x{height}; views must be square. Crop or pad it to a square first."
            )
        if height != resolution:
            warnings.warn(f"{name}[{i}] is {width}x{height}; resizing it to the model's {resolution}x{resolution}.", stacklevel=3)
            tensor = F.interpolate(tensor[None], size=(resolution, resolution), mode="bicubic", antialias=True)[0]
            tensor = tensor.clamp(0, 1)
        processed.append(tensor)
    return torch.stack(processed) * 2 - 1


def weights_to_heatmap(weights: torch.Tensor | np.ndarray) -> np.ndarray:
    """Per-view weights `(N, 3, H, W)` in [0, 1] -> `(N, H, W, 3)` uint8 heatmaps (dark blue 0 .. yellow 1).

    The three colour channels' weights are averaged; the colour ramp needs no plotting library.

    Example:
        ```py
        >>> weights_to_heatmap(np.full((2, 3, 8, 8), 0.5)).shape
        (2, 8, 8, 3)
        ```
    """
    weights = np.asarray(weights, dtype=np.float32).mean(axis=1).clip(0, 1)
    # A three-stop ramp: dark blue -> magenta-red -> yellow, readable for colour-blind viewers.
    stops = np.array([[20, 20, 90], [200, 40, 90], [255, 230, 40]], dtype=np.float32)
    position = weights * (len(stops) - 1)
    low = np.floor(position).astype(int).clip(0, len(stops) - 2)
    fraction = (position - low)[..., None]
    colours = stops[low] * (1 - fraction) + stops[low + 1] * fraction
    return colours.round().astype(np.uint8)


def comparison_row(
    input_views: list[np.ndarray], sample: np.ndarray, ground_truth: np.ndarray | None, weights, num_slots: int
) -> np.ndarray:
    """One row of a results grid: `num_slots` input views | the sample | the ground truth | the weight heatmaps.

    All images are `(H, W, 3)`: uint8, or float in [0, 1]. Missing input or weight slots stay white, so rows
    with different numbers of views line up. `weights` is `(N, 3, H, W)` or `None` (no weight maps).

    Example:
        ```py
        >>> view = np.zeros((8, 8, 3), np.uint8)
        >>> comparison_row([view], view, view, np.ones((1, 3, 8, 8)), num_slots=2).shape
        (8, 48, 3)
        ```
    """
    as_uint8 = lambda image: image if image.dtype == np.uint8 else (np.clip(image, 0, 1) * 255).round().astype(np.uint8)
    blank = np.full_like(as_uint8(sample), 255)
    inputs = [as_uint8(v) for v in input_views] + [blank] * (num_slots - len(input_views))
    heatmaps = list(weights_to_heatmap(weights)) if weights is not None else []
    heatmaps += [blank] * (num_slots - len(heatmaps))
    truth = [as_uint8(ground_truth)] if ground_truth is not None else []
    return np.concatenate(inputs + [as_uint8(sample)] + truth + heatmaps, axis=1)
