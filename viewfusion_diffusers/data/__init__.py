"""Multi-view data: rendering meshes (pybullet's, procedural NMR categories or your own) in the NMR layout, reading it,
the paper's sampling rules."""

import importlib
from typing import TYPE_CHECKING

# Imported on first use, so that building the `viewfusion-render` parser needs no torch.
_import_structure = {
    "dataset": ["AZIMUTHS_DEGREES", "EvalSample", "HFMultiViewDataset", "NMRDataset", "ViewFusionTrainDataset",
                "collate_views", "make_eval_samples", "to_hf_dataset"],
    "render": ["MeshError", "read_mesh", "render_dataset", "render_mesh", "render_object", "render_urdf"],
    "categories": ["CATEGORIES", "make_object"],
    "meshes": ["write_obj_parts"],
}
_name_to_module = {name: module for module, names in _import_structure.items() for name in names}

__all__ = sorted(_name_to_module)

if TYPE_CHECKING:
    from .dataset import (AZIMUTHS_DEGREES, EvalSample, HFMultiViewDataset, NMRDataset, ViewFusionTrainDataset,
                          collate_views, make_eval_samples, to_hf_dataset)
    from .categories import CATEGORIES, make_object
    from .meshes import write_obj_parts
    from .render import MeshError, read_mesh, render_dataset, render_mesh, render_object, render_urdf


def __getattr__(name):
    if name in _name_to_module:
        value = getattr(importlib.import_module(f".{_name_to_module[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
