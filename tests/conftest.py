import os

import pytest
import torch


os.environ.setdefault("HF_HUB_OFFLINE", "1")
torch.set_num_threads(min(2, torch.get_num_threads()))

from viewfusion_diffusers import ViewFusionPipeline, ViewFusionUNet2DModel, default_scheduler  # noqa: E402


# Two levels of 16 and 32 channels, attention at the lower one: a U-Net of the real shape, a few thousand weights.
TINY_UNET_32 = dict(
    sample_size=32,
    block_out_channels=(16, 32),
    down_block_types=("DownBlock2D", "AttnDownBlock2D"),
    up_block_types=("AttnUpBlock2D", "UpBlock2D"),
    layers_per_block=1,
    norm_num_groups=8,
    azimuth_num_frequencies=4,
)


def make_tiny_unet(seed: int = 0, **overrides) -> ViewFusionUNet2DModel:
    """A 16x16 U-Net small enough for a test to run many denoising steps in well under a second."""
    torch.manual_seed(seed)
    return ViewFusionUNet2DModel(**{**TINY_UNET_32, "sample_size": 16, **overrides}).eval()


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


@pytest.fixture(scope="session")
def rendered_dataset(tmp_path_factory):
    """Ten pybullet objects rendered at 32x32 in the NMR layout (8 train / 1 val / 1 test), shared by the session."""
    from viewfusion_diffusers.data.render import render_dataset

    root = tmp_path_factory.mktemp("pybullet-32")
    render_dataset(root, source="random_urdfs", limit=10, resolution=32, seed=0)
    return root


@pytest.fixture(scope="session")
def tiny_unet_config_file(tmp_path_factory):
    import json

    path = tmp_path_factory.mktemp("config") / "config.json"
    path.write_text(json.dumps(TINY_UNET_32))
    return path


@pytest.fixture(scope="session")
def tiny_pipeline_32_dir(tmp_path_factory):
    """A randomly initialised 32x32 pipeline saved to disk."""
    folder = tmp_path_factory.mktemp("tiny-pipeline-32")
    torch.manual_seed(0)
    pipe = ViewFusionPipeline(ViewFusionUNet2DModel(**TINY_UNET_32), default_scheduler())
    pipe.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def lpips_weights_available():
    """The cached LPIPS weights, fetched on first use (once per machine); a failed fetch fails the tests that need
    them."""
    from viewfusion_diffusers.metrics.lpips import LPIPSWeightsError, ensure_lpips_weights

    try:
        return ensure_lpips_weights()
    except LPIPSWeightsError as error:
        pytest.fail(str(error))
