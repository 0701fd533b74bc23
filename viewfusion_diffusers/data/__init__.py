"""Multi-view data: rendering meshes (pybullet's, procedural NMR categories or your own) in the NMR layout, reading it,
the paper's sampling rules."""

from typing import TYPE_CHECKING

from .._lazy import lazy_module_attributes


# Imported on first use, so that building the `viewfusion-render` parser needs no torch.
_import_structure = {
    "dataset": [
        "AZIMUTHS_DEGREES",
        "EvalSample",
        "HFMultiViewDataset",
        "NMRDataset",
        "make_eval_samples",
        "to_hf_dataset",
    ],
    "samplers": ["TrainingBatch", "ViewFusionTrainDataset", "collate_views"],
    "render": ["MeshError", "read_mesh", "render_dataset", "render_mesh", "render_object", "render_urdf"],
    "categories": ["CATEGORIES", "make_object"],
    "meshes": ["write_obj_parts"],
}

__all__ = sorted(name for names in _import_structure.values() for name in names)

if TYPE_CHECKING:
    from .categories import CATEGORIES, make_object
    from .dataset import AZIMUTHS_DEGREES, EvalSample, HFMultiViewDataset, NMRDataset, make_eval_samples, to_hf_dataset
    from .meshes import write_obj_parts
    from .render import MeshError, read_mesh, render_dataset, render_mesh, render_object, render_urdf
    from .samplers import TrainingBatch, ViewFusionTrainDataset, collate_views


__getattr__, __dir__ = lazy_module_attributes(__name__, _import_structure, globals())
