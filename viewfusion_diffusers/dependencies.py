"""Optional dependencies: each extra of the package brings the libraries of one job (rendering, training, ...)."""

import importlib
from types import ModuleType


def import_optional(module: str, extra: str) -> ModuleType:
    """Import `module`, or say which extra of the package installs it.

    Example:
        ```py
        >>> p = import_optional("pybullet", "render")
        ```
    """
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise ImportError(
            f"{module} is not installed; it comes with the [{extra}] extra: pip install "
            f"'viewfusion-diffusers[{extra}]'"
        ) from error
