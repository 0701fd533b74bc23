"""Public names imported on first use, as in diffusers, so that command lines parse without loading torch."""

import importlib


def lazy_module_attributes(module_name: str, import_structure: dict[str, list[str]], module_globals: dict):
    """`(__getattr__, __dir__)` for a package whose public names live in the submodules `import_structure` lists.

    A name is imported from its submodule on first access and then kept in the package's globals, so later
    accesses cost nothing.

    Example:
        ```py
        >>> __getattr__, __dir__ = lazy_module_attributes(__name__, {"pipeline": ["ViewFusionPipeline"]}, globals())
        ```
    """
    name_to_module = {name: module for module, names in import_structure.items() for name in names}

    def __getattr__(name):
        if name in name_to_module:
            value = getattr(importlib.import_module(f".{name_to_module[name]}", module_name), name)
            module_globals[name] = value
            return value
        raise AttributeError(f"module {module_name!r} has no attribute {name!r}")

    def __dir__():
        return sorted(set(module_globals) | set(module_globals.get("__all__", ())))

    return __getattr__, __dir__
