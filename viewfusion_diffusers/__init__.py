"""ViewFusion: composable diffusion for novel view synthesis, as a diffusers pipeline."""

from typing import TYPE_CHECKING

from ._lazy import lazy_module_attributes


__version__ = "0.1.0"

# Each public name and the module that defines it. They are imported on first use, as in diffusers, so that
# `viewfusion --help` and the other command lines answer without loading torch.
_import_structure = {
    "fusion": ["fuse_noise", "pad_views", "predict_fused_noise"],
    "image_processor": ["ViewProcessor"],
    "pipeline": ["ViewFusionPipeline", "ViewFusionPipelineOutput"],
    "schedulers": ["SCHEDULERS", "default_scheduler", "scheduler_from_name"],
    "unet": ["UNET_PRESETS", "ViewFusionUNet2DModel", "ViewFusionUNetOutput"],
}

__all__ = sorted(name for names in _import_structure.values() for name in names)

if TYPE_CHECKING:
    from .fusion import fuse_noise, pad_views, predict_fused_noise
    from .image_processor import ViewProcessor
    from .pipeline import ViewFusionPipeline, ViewFusionPipelineOutput
    from .schedulers import SCHEDULERS, default_scheduler, scheduler_from_name
    from .unet import UNET_PRESETS, ViewFusionUNet2DModel, ViewFusionUNetOutput


__getattr__, __dir__ = lazy_module_attributes(__name__, _import_structure, globals())
