"""Writing files so that nobody ever sees a half-written one."""

import contextlib
import os
import tempfile
from pathlib import Path


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb"):
    """Open a temporary file beside `path` for writing; on success it is renamed to `path`, on error removed.

    The file gets the permissions a plain `open()` would give it (0666 less the umask), not the 0600 of a
    temporary file, so other users can read what was written.

    Example:
        ```py
        >>> with atomic_write("results.json", "w") as f:
        ...     f.write("{}")
        ```
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".tmp-{path.name}-")
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)
        with os.fdopen(descriptor, mode) as f:
            yield f
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
