"""Turning a photo of an object into a view that looks like the training renders.

The renders show one object on white, centred, its larger side spanning about 63% of the frame. A photo
gets the same treatment: transparency is composited on white; a photo with a background has it removed by
a `transformers` image-segmentation model (the segment that covers most of the image centre is the object);
then the object is cropped, centred, padded with white and resized (bicubic, antialiased, as everywhere).
"""

import numpy as np
import PIL.Image
import torch

from .image_processor import ViewProcessor


# Natively supported by transformers (SegFormer), small enough for a CPU.
DEFAULT_SEGMENTATION_MODEL = "nvidia/segformer-b0-finetuned-ade-512-512"
# Mean span of the object's larger side in the rendered training views (see the README's data section).
TRAINING_FILL = 0.63


def has_plain_background(image: PIL.Image.Image, threshold: int = 235, share: float = 0.95) -> bool:
    """True when almost all border pixels are near white: the view already looks like a render."""
    rgb = np.asarray(image.convert("RGB"))
    border = np.concatenate([rgb[0], rgb[-1], rgb[:, 0], rgb[:, -1]])
    return bool(((border >= threshold).all(axis=1)).mean() >= share)


def object_mask(image: PIL.Image.Image, segmenter) -> np.ndarray:
    """The mask of the segment that covers most of the image's central region, from an image-segmentation
    `transformers.pipeline` (semantic or panoptic)."""
    segments = segmenter(image.convert("RGB"))
    if not segments:
        raise ValueError("The segmentation model found nothing in the image; switch background removal off.")
    height, width = image.height, image.width
    centre = np.zeros((height, width), dtype=bool)
    centre[height // 4 : height - height // 4, width // 4 : width - width // 4] = True
    masks = [np.asarray(segment["mask"].resize((width, height))) > 127 for segment in segments]
    return max(masks, key=lambda mask: (mask & centre).sum())


def remove_background(image: PIL.Image.Image, segmenter) -> PIL.Image.Image:
    """The image with everything but the central object replaced by white."""
    mask = object_mask(image, segmenter)
    rgb = np.asarray(image.convert("RGB")).copy()
    rgb[~mask] = 255
    return PIL.Image.fromarray(rgb)


def center_and_scale(image: PIL.Image.Image, resolution: int, fill: float = TRAINING_FILL) -> PIL.Image.Image:
    """Crop the non-white object, centre it on a white square so it spans `fill` of the side, and resize.

    Example:
        ```py
        >>> center_and_scale(PIL.Image.new("RGB", (300, 200), "white"), 64).size
        (64, 64)
        ```
    """
    rgb = np.asarray(image.convert("RGB"))
    foreground = (rgb < 245).any(axis=-1)
    if not foreground.any():
        return resize_square(image.convert("RGB"), resolution)
    rows, cols = np.nonzero(foreground)
    crop = rgb[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
    side = int(np.ceil(max(crop.shape[:2]) / fill))
    canvas = np.full((side, side, 3), 255, dtype=np.uint8)
    top, left = (side - crop.shape[0]) // 2, (side - crop.shape[1]) // 2
    canvas[top : top + crop.shape[0], left : left + crop.shape[1]] = crop
    return resize_square(PIL.Image.fromarray(canvas), resolution)


def resize_square(image: PIL.Image.Image, resolution: int) -> PIL.Image.Image:
    """An RGB image resized to `resolution` x `resolution` with the package's one resize ([`ViewProcessor.resize`]).

    Example:
        ```py
        >>> resize_square(PIL.Image.new("RGB", (100, 100), "white"), 64).size
        (64, 64)
        ```
    """
    tensor = ViewProcessor.to_float_tensor(image.convert("RGB"), "image")
    resized = ViewProcessor.resize(tensor[None], resolution, resolution)[0]
    return PIL.Image.fromarray((resized.permute(1, 2, 0) * 255).round().to(torch.uint8).numpy())


def prepare_photo(image: PIL.Image.Image, resolution: int, segmenter=None) -> PIL.Image.Image:
    """A user's photo or render -> a `resolution` square view on white, framed like the training views.

    Args:
        image (`PIL.Image.Image`): any mode; transparency is composited on white.
        resolution (`int`): the model's image size.
        segmenter (*optional*): a `transformers.pipeline("image-segmentation", ...)`; when given, a photo whose
            border is not plain white has its background removed first.

    Example:
        ```py
        >>> from transformers import pipeline
        >>> segmenter = pipeline("image-segmentation", model=DEFAULT_SEGMENTATION_MODEL)
        >>> view = prepare_photo(PIL.Image.open("mug.jpg"), 64, segmenter)
        ```
    """
    image = ViewProcessor.composite_on_white(image)
    if segmenter is not None and not has_plain_background(image):
        image = remove_background(image, segmenter)
    return center_and_scale(image, resolution)
