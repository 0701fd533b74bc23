"""`ViewProcessor`: the one way views become model tensors, and model tensors become pictures.

Accepted views: PIL images (RGB, RGBA, grayscale, palette, ...), numpy arrays `(H, W)`, `(H, W, 3)` or
`(H, W, 4)` (uint8 in [0, 255], or float in [0, 1]), and torch tensors `(3, H, W)` or `(4, H, W)` (float in
[0, 1], or uint8). Transparent pixels are composited on white, as in the training renders; grayscale is
repeated over the three channels. Every resize in the package (user views, training targets at another
resolution) is bicubic with antialiasing, clamped back into range.
"""

import warnings

import numpy as np
import PIL.Image
import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.utils import CONFIG_NAME


ViewLike = PIL.Image.Image | np.ndarray | torch.Tensor

# The resize used everywhere: `F.interpolate(..., mode=RESIZE_MODE, antialias=True)`.
RESIZE_MODE = "bicubic"
OUTPUT_TYPES = ("pil", "np", "pt", "latent")
# Below this many pixels a side, a view holds too little of the object to condition on.
MIN_VIEW_SIZE = 8
# Enlarging a view by more than this factor makes it a blur of few pixels: allowed, with a warning.
MAX_QUIET_UPSCALE = 4
# PIL modes of one channel (with or without alpha): such views are used as RGB, with a warning.
GRAYSCALE_MODES = ("1", "L", "LA", "I", "I;16", "F")


def grayscale_warning(name: str) -> str:
    """The warning for a grayscale view, the same from the pipeline, the command lines and the demo.

    Example:
        ```py
        >>> grayscale_warning("input_views[0]")
        'input_views[0] is grayscale; using it as RGB (the model was trained on colour views).'
        ```
    """
    return f"{name} is grayscale; using it as RGB (the model was trained on colour views)."


class ViewProcessor(ConfigMixin):
    r"""
    Turns a user's views into the `(N, 3, H, W)` tensors in [-1, 1] the U-Net takes, and the pipeline's images
    back into PIL images or arrays; the counterpart of diffusers' [`VaeImageProcessor`] for pixel-space views.

    The rule for what a view may be, used by the pipeline, the command lines and the demo:

    - refused, with the reason and the fix: an aspect ratio other than the model's (resizing would distort the
      object), a side below `MIN_VIEW_SIZE` pixels, NaN or infinite values, floats outside [0, 1], other shapes,
      dtypes or types;
    - converted, with a warning: a grayscale view to RGB (the model was trained on colour views), a view of
      another size to the model's (bicubic, antialiased), said louder when it is enlarged more than
      `MAX_QUIET_UPSCALE` times;
    - converted silently: transparency, composited on white (the training renders' background).

    Parameters:
        warn_on_resize (`bool`, defaults to `True`): warn when a view is resized to the model's size.
        pixel_range (`tuple[float, float]`, defaults to `(-1.0, 1.0)`): the values model tensors take, the U-Net's
            `pixel_range`: diffusers' `(-1, 1)`, or `(0, 1)` for the authors' converted network.

    Example:
        ```py
        >>> import PIL.Image
        >>> from viewfusion_diffusers import ViewProcessor

        >>> processor = ViewProcessor()
        >>> views = processor.preprocess([PIL.Image.new("RGBA", (64, 64)), PIL.Image.new("L", (64, 64))], 64, 64)
        >>> views.shape, views[0].min().item(), views[1].max().item()  # transparent -> white (+1), black -> -1
        (torch.Size([2, 3, 64, 64]), 1.0, -1.0)
        >>> processor.postprocess(views, output_type="np").shape
        (2, 64, 64, 3)
        ```
    """

    config_name = CONFIG_NAME

    @register_to_config
    def __init__(self, warn_on_resize: bool = True, pixel_range: tuple[float, float] = (-1.0, 1.0)):
        super().__init__()
        if tuple(pixel_range) not in ((-1.0, 1.0), (0.0, 1.0)):
            raise ValueError(f"`pixel_range` must be (-1, 1) or (0, 1), got {pixel_range}.")

    def to_pixel_range(self, images: torch.Tensor) -> torch.Tensor:
        """Images in [0, 1] as model tensors, in the configured `pixel_range`.

        Example:
            ```py
            >>> ViewProcessor().to_pixel_range(torch.zeros(1)).item()
            -1.0
            >>> ViewProcessor(pixel_range=(0, 1)).to_pixel_range(torch.zeros(1)).item()
            0.0
            ```
        """
        return images if tuple(self.config.pixel_range) == (0.0, 1.0) else images * 2 - 1

    def to_unit_range(self, images: torch.Tensor) -> torch.Tensor:
        """Model tensors in the configured `pixel_range` as images in [0, 1] (not clamped).

        Example:
            ```py
            >>> ViewProcessor().to_unit_range(torch.zeros(1)).item()
            0.5
            ```
        """
        return images if tuple(self.config.pixel_range) == (0.0, 1.0) else images / 2 + 0.5

    @staticmethod
    def to_float_tensor(view: ViewLike, name: str = "view") -> torch.Tensor:
        """One view as a float `(C, H, W)` tensor in [0, 1], C in {1, 3, 4}; bad input raises naming `name`.

        Example:
            ```py
            >>> ViewProcessor.to_float_tensor(np.zeros((8, 8, 4), np.uint8)).shape
            torch.Size([4, 8, 8])
            ```
        """
        if isinstance(view, PIL.Image.Image):
            if view.mode not in ("RGB", "RGBA", "L"):
                view = view.convert("RGBA")
            tensor = torch.from_numpy(np.array(view)).float() / 255.0
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
            raise TypeError(
                f"{name} has type {type(view).__name__}; pass a PIL image, a numpy array or a torch tensor."
            )
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

    @classmethod
    def composite_on_white(cls, view: torch.Tensor | PIL.Image.Image) -> torch.Tensor | PIL.Image.Image:
        """Composite transparency on white and make the view RGB: `rgb * alpha + (1 - alpha)`.

        A `(C, H, W)` float tensor in [0, 1] (C in {1, 3, 4}) gives a `(3, H, W)` tensor; a PIL image of any mode
        gives an RGB PIL image. This is the package's only compositing rule: views for sampling, dataset renders
        and user photos all go through it.

        Example:
            ```py
            >>> ViewProcessor.composite_on_white(PIL.Image.new("RGBA", (4, 4), (255, 0, 0, 0))).getpixel((0, 0))
            (255, 255, 255)
            ```
        """
        if isinstance(view, PIL.Image.Image):
            rgb = cls.composite_on_white(cls.to_float_tensor(view, "image"))
            return PIL.Image.fromarray((rgb.permute(1, 2, 0) * 255).round().to(torch.uint8).numpy())
        if view.shape[0] == 1:
            return view.expand(3, -1, -1)
        if view.shape[0] == 4:
            rgb, alpha = view[:3], view[3:]
            return rgb * alpha + (1 - alpha)
        return view

    @staticmethod
    def resize(
        images: torch.Tensor, height: int, width: int, value_range: tuple[float, float] = (0.0, 1.0)
    ) -> torch.Tensor:
        """Resize `(N, C, H, W)` images to `height` x `width` the package's one way (bicubic, antialiased), clamped
        to `value_range` since bicubic overshoots at edges. Use `value_range=(-1, 1)` for model-space images.

        Example:
            ```py
            >>> ViewProcessor.resize(torch.rand(2, 3, 64, 64), 32, 32).shape
            torch.Size([2, 3, 32, 32])
            ```
        """
        if images.shape[-2:] == (height, width):
            return images
        resized = F.interpolate(images, size=(height, width), mode=RESIZE_MODE, antialias=True)
        return resized.clamp(*value_range)

    def preprocess(self, views, height: int, width: int, name: str = "input_views") -> torch.Tensor:
        """Convert one object's views to a `(N, 3, height, width)` float tensor in the `pixel_range` ([-1, 1]).

        Args:
            views: a list of PIL images / arrays / tensors, a single view, or an `(N, 3, H, W)` tensor in [0, 1].
            height (`int`), width (`int`): the model's image size.
            name (`str`): how errors and warnings refer to these views.

        Example:
            ```py
            >>> ViewProcessor().preprocess([PIL.Image.new("RGB", (64, 64))], 64, 64).shape
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
            tensor = self.to_float_tensor(view, f"{name}[{i}]")
            if tensor.shape[0] == 1 or (isinstance(view, PIL.Image.Image) and view.mode in GRAYSCALE_MODES):
                warnings.warn(grayscale_warning(f"{name}[{i}]"), stacklevel=3)
            tensor = self.composite_on_white(tensor)
            view_height, view_width = tensor.shape[-2:]
            if min(view_height, view_width) < min(MIN_VIEW_SIZE, height, width):
                raise ValueError(
                    f"{name}[{i}] is {view_width}x{view_height}: too small to show the object. Give views of at least "
                    f"{MIN_VIEW_SIZE}x{MIN_VIEW_SIZE} pixels, ideally the model's {width}x{height}."
                )
            # Same aspect ratio as the model, compared exactly in integers.
            if view_height * width != view_width * height:
                shape = (
                    "square"
                    if height == width
                    else f"{width}:{height} (width:height) like the model's {width}x{height}"
                )
                raise ValueError(
                    f"{name}[{i}] is {view_width}x{view_height}; views must be {shape}. "
                    "Crop or pad it to that shape first."
                )
            if (view_height, view_width) != (height, width):
                if height > MAX_QUIET_UPSCALE * view_height:  # said even with warn_on_resize=False
                    warnings.warn(
                        f"{name}[{i}] is {view_width}x{view_height}; enlarging it {height / view_height:.0f}x to the "
                        "model's "
                        f"{width}x{height} leaves little detail: give views closer to that size.",
                        stacklevel=3,
                    )
                elif self.config.warn_on_resize:
                    warnings.warn(
                        f"{name}[{i}] is {view_width}x{view_height}; resizing it to the model's {width}x{height}.",
                        stacklevel=3,
                    )
                tensor = self.resize(tensor[None], height, width)[0]
            processed.append(tensor)
        return self.to_pixel_range(torch.stack(processed))

    @staticmethod
    def numpy_to_pil(images: np.ndarray) -> list[PIL.Image.Image]:
        """`(B, H, W, 3)` floats in [0, 1] -> a list of RGB PIL images.

        Example:
            ```py
            >>> ViewProcessor.numpy_to_pil(np.ones((1, 8, 8, 3)))[0].size
            (8, 8)
            ```
        """
        return [PIL.Image.fromarray(image) for image in (images.clip(0, 1) * 255).round().astype(np.uint8)]

    def postprocess(self, images: torch.Tensor, output_type: str = "pil"):
        """Model-space images `(B, 3, H, W)` in the `pixel_range` ([-1, 1]) -> `output_type`.

        `"latent"` returns `images` untouched; `"pt"` a CPU float tensor `(B, 3, H, W)` in [0, 1]; `"np"` a float
        array `(B, H, W, 3)` in [0, 1]; `"pil"` a list of RGB PIL images.

        Example:
            ```py
            >>> ViewProcessor().postprocess(torch.zeros(1, 3, 8, 8), output_type="pil")[0].getpixel((0, 0))
            (128, 128, 128)
            ```
        """
        if output_type not in OUTPUT_TYPES:
            raise ValueError(
                f"`output_type` must be one of {', '.join(map(repr, OUTPUT_TYPES))}, got {output_type!r}."
            )
        if not isinstance(images, torch.Tensor) or images.ndim != 4:
            raise ValueError(f"`images` must be a (B, 3, H, W) tensor, got {type(images).__name__}.")
        if output_type == "latent":
            return images
        images = self.to_unit_range(images.detach().float().cpu()).clamp(0, 1)
        if output_type == "pt":
            return images
        images = images.permute(0, 2, 3, 1).numpy()
        return images if output_type == "np" else self.numpy_to_pil(images)
