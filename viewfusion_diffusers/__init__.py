"""ViewFusion: composable diffusion for novel view synthesis, as a diffusers pipeline."""

from .fusion import fuse_noise, pad_views, predict_fused_noise
from .pipeline import (
    SCHEDULERS,
    ViewFusionPipeline,
    ViewFusionPipelineOutput,
    default_scheduler,
    scheduler_from_name,
)
from .unet import UNET_PRESETS, ViewFusionUNet2DModel, ViewFusionUNetOutput

__version__ = "0.1.0"

__all__ = [
    "SCHEDULERS",
    "UNET_PRESETS",
    "ViewFusionPipeline",
    "ViewFusionPipelineOutput",
    "ViewFusionUNet2DModel",
    "ViewFusionUNetOutput",
    "default_scheduler",
    "fuse_noise",
    "pad_views",
    "predict_fused_noise",
    "scheduler_from_name",
]
