"""Multi-view data: rendering pybullet's meshes in the NMR layout, reading it, and the paper's sampling rules."""

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
from .render import render_dataset, render_urdf

__all__ = [
    "AZIMUTHS_DEGREES",
    "EvalSample",
    "HFMultiViewDataset",
    "NMRDataset",
    "ViewFusionTrainDataset",
    "collate_views",
    "make_eval_samples",
    "render_dataset",
    "render_urdf",
    "to_hf_dataset",
]
