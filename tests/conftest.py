import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
torch.set_num_threads(min(2, torch.get_num_threads()))

from viewfusion_diffusers import ViewFusionPipeline, ViewFusionUNet2DModel, default_scheduler  # noqa: E402


def make_tiny_unet(seed: int = 0, **overrides) -> ViewFusionUNet2DModel:
    """A 16x16 U-Net small enough for a test to run many denoising steps in well under a second."""
    torch.manual_seed(seed)
    config = dict(
        sample_size=16,
        block_out_channels=(16, 32),
        down_block_types=("DownBlock2D", "AttnDownBlock2D"),
        up_block_types=("AttnUpBlock2D", "UpBlock2D"),
        layers_per_block=1,
        norm_num_groups=8,
        azimuth_num_frequencies=4,
    )
    config.update(overrides)
    return ViewFusionUNet2DModel(**config).eval()


def make_tiny_pipeline(seed: int = 0, prediction_type: str = "epsilon", **unet_overrides) -> ViewFusionPipeline:
    pipe = ViewFusionPipeline(make_tiny_unet(seed, **unet_overrides), default_scheduler(prediction_type))
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.fixture
def tiny_pipeline():
    return make_tiny_pipeline()


@pytest.fixture
def views16():
    """Three distinct 16x16 views as uint8 arrays."""
    generator = torch.Generator().manual_seed(1)
    return [torch.randint(0, 256, (16, 16, 3), generator=generator, dtype=torch.uint8).numpy() for _ in range(6)]
