"""ViewFusion: composable diffusion for novel view synthesis, as a diffusers pipeline."""

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

# Each public name and the module that defines it. They are imported on first use, as in diffusers, so that
# `viewfusion --help` and the other command lines answer without loading torch.
_import_structure = {
    "fusion": ["fuse_noise", "pad_views", "predict_fused_noise"],
    "image_processor": ["ViewProcessor"],
    "pipeline": ["SCHEDULERS", "ViewFusionPipeline", "ViewFusionPipelineOutput", "default_scheduler", "scheduler_from_name"],
    "unet": ["UNET_PRESETS", "ViewFusionUNet2DModel", "ViewFusionUNetOutput"],
}
_name_to_module = {name: module for module, names in _import_structure.items() for name in names}

__all__ = sorted(_name_to_module)

if TYPE_CHECKING:
    from .fusion import fuse_noise, pad_views, predict_fused_noise
    from .image_processor import ViewProcessor
    from .pipeline import SCHEDULERS, ViewFusionPipeline, ViewFusionPipelineOutput, default_scheduler, scheduler_from_name
    from .unet import UNET_PRESETS, ViewFusionUNet2DModel, ViewFusionUNetOutput


def __getattr__(name):
    if name in _name_to_module:
        value = getattr(importlib.import_module(f".{_name_to_module[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
