"""Multi-view data: rendering meshes (pybullet's or your own) in the NMR layout, reading it, the paper's sampling rules."""

from .dataset import (
    AZIMUTHS_DEGREES,
    EvalSample,
    HFMultiViewDataset,
    NMRDataset,
    ViewFusionTrainDataset,
    collate_views,
    make_eval_samples,
    to_hf_dataset,
)
from .render import MeshError, read_mesh, render_dataset, render_mesh, render_urdf

__all__ = [
    "AZIMUTHS_DEGREES",
    "EvalSample",
    "HFMultiViewDataset",
    "MeshError",
    "NMRDataset",
    "ViewFusionTrainDataset",
    "collate_views",
    "make_eval_samples",
    "read_mesh",
    "render_dataset",
    "render_mesh",
    "render_urdf",
    "to_hf_dataset",
]
