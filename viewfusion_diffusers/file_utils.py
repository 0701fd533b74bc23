"""Writing files so that nobody ever sees a half-written one."""

import contextlib
import functools
import io
import os
import shutil
import tempfile
from pathlib import Path


def current_umask() -> int:
    """The process's umask (reading it means setting it, so it is set straight back).

    Example:
        ```py
        >>> oct(0o666 & ~current_umask())  # the permissions `open()` gives a new file
        '0o644'
        ```
    """
    umask = os.umask(0)
    os.umask(umask)
    return umask


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb"):
    """Open a temporary file beside `path` for writing; on success it is renamed to `path`, on error removed.

    The file gets the permissions a plain `open()` would give it (0666 less the umask), not the 0600 of a
    temporary file, so other users can read what was written.

    Example:
        ```py
        >>> with atomic_write("results.json", "w") as f:
        ...     _ = f.write("{}")
        >>> open("results.json").read()
        '{}'
        ```
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".tmp-{path.name}-")
    try:
        os.chmod(temporary, 0o666 & ~current_umask())
        with os.fdopen(descriptor, mode) as f:
            yield f
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


@contextlib.contextmanager
def atomic_directory(path: str | os.PathLike):
    """Yield a temporary folder beside `path` to fill; on success it is renamed to `path`, on error removed.

    All of the folder appears, or none of it. It gets the permissions of a plain `mkdir()` (0777 less the
    umask), not the 0700 of a temporary folder. `path` must not exist yet: a folder is not replaced.

    Example:
        ```py
        >>> with atomic_directory("data/car/000") as folder:
        ...     _ = (folder / "cameras.npz").write_bytes(b"")
        >>> os.listdir("data/car/000")
        ['cameras.npz']
        ```
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".tmp-{path.name}-", dir=path.parent))
    try:
        yield staging
        os.chmod(staging, 0o777 & ~current_umask())
        os.rename(staging, path)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


@functools.lru_cache(maxsize=None)
def can_write_rgb(image_format_name: str) -> bool:
    """Whether PIL writes an RGB image in this format here. PIL names formats it cannot write (WMF, HDF5, BUFR,
    GRIB: stubs without a handler) or cannot write in RGB (MSP, XBM, PFM, ...) among its save formats, so try it
    on a tiny image in memory.

    Example:
        ```py
        >>> can_write_rgb("PNG"), can_write_rgb("WMF")
        (True, False)
        ```
    """
    import PIL.Image

    try:
        PIL.Image.new("RGB", (8, 8)).save(io.BytesIO(), format=image_format_name)
    except Exception:  # noqa: BLE001 - any failure means the format is of no use for our images
        return False
    return True


def image_format(path: str | os.PathLike) -> str:
    """The PIL format a file name asks for (`.png` -> PNG, `.jpg` -> JPEG, ...), or a `ValueError` listing the
    extensions of the formats PIL can write RGB images in.

    Example:
        ```py
        >>> image_format("novel.jpg")
        'JPEG'
        ```
    """
    import PIL.Image

    PIL.Image.init()
    formats = {ext: fmt for ext, fmt in PIL.Image.registered_extensions().items() if fmt in PIL.Image.SAVE}
    extension = Path(path).suffix.lower()
    if extension not in formats or not can_write_rgb(formats[extension]):
        writable = sorted(ext for ext, fmt in formats.items() if can_write_rgb(fmt))
        reason = "unknown image extension" if extension not in formats else "PIL cannot write RGB images as"
        raise ValueError(f"{str(path)!r}: {reason} {extension or '(none)'!r}; use one of {' '.join(writable)}")
    return formats[extension]


def save_image(image, path: str | os.PathLike) -> None:
    """Write an image (PIL, or a uint8 `(H, W, 3)` array) atomically, in the format its file name names.

    Example:
        ```py
        >>> import numpy as np
        >>> save_image(np.zeros((8, 8, 3), np.uint8), "black.png")
        ```
    """
    import numpy as np
    import PIL.Image

    image_format_name = image_format(path)
    image = image if isinstance(image, PIL.Image.Image) else PIL.Image.fromarray(np.asarray(image))
    with atomic_write(path, "wb") as f:
        image.save(f, format=image_format_name)
