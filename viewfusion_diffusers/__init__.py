"""ViewFusion: composable diffusion for novel view synthesis, as a diffusers pipeline."""

__version__ = "0.1.0"
