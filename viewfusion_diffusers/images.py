"""Model tensors as pictures for people: weight heatmaps and rows of results grids.

Views go in and images come out through [`ViewProcessor`] (`viewfusion_diffusers.image_processor`).
"""

import numpy as np


def weights_to_heatmap(weights) -> np.ndarray:
    """Per-view weights `(N, 3, H, W)` in [0, 1] (array or CPU tensor) -> `(N, H, W, 3)` uint8 heatmaps (dark blue
    0 .. yellow 1).

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
    as_uint8 = lambda image: (
        image if image.dtype == np.uint8 else (np.clip(image, 0, 1) * 255).round().astype(np.uint8)
    )
    blank = np.full_like(as_uint8(sample), 255)
    inputs = [as_uint8(v) for v in input_views] + [blank] * (num_slots - len(input_views))
    heatmaps = list(weights_to_heatmap(weights)) if weights is not None else []
    heatmaps += [blank] * (num_slots - len(heatmaps))
    truth = [as_uint8(ground_truth)] if ground_truth is not None else []
    return np.concatenate(inputs + [as_uint8(sample)] + truth + heatmaps, axis=1)
