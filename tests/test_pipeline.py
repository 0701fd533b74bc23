import json

import numpy as np
import PIL.Image
import pytest
import torch

from viewfusion_diffusers import SCHEDULERS, ViewFusionPipeline, scheduler_from_name
from conftest import make_tiny_pipeline


def run(pipe, views, azimuth=90.0, seed=0, steps=4, **kwargs):
    kwargs.setdefault("output_type", "np")
    return pipe(views, azimuth, num_inference_steps=steps, generator=torch.Generator().manual_seed(seed), **kwargs)


def test_output_shapes_and_types(tiny_pipeline, views16):
    out = run(tiny_pipeline, views16[:3], output_type="pil")
    assert isinstance(out.images[0], PIL.Image.Image) and out.images[0].size == (16, 16)
    assert out.view_weights[0].shape == (3, 3, 16, 16)
    np.testing.assert_allclose(out.view_weights[0].sum(0), 1.0, atol=1e-5)
    as_np = run(tiny_pipeline, views16[:3]).images
    as_pt = run(tiny_pipeline, views16[:3], output_type="pt").images
    assert as_np.shape == (1, 16, 16, 3) and as_pt.shape == (1, 3, 16, 16)
    np.testing.assert_allclose(as_np[0], as_pt[0].permute(1, 2, 0).numpy())
    images, weights = run(tiny_pipeline, views16[:3], return_dict=False)
    np.testing.assert_array_equal(images, as_np)


def test_batch_with_mixed_view_counts_equals_one_by_one(tiny_pipeline, views16):
    objects = [views16[:1], views16[:3], views16[:6]]
    azimuths = [0.0, 90.0, 255.0]
    generators = [torch.Generator().manual_seed(s) for s in (10, 11, 12)]
    batched = tiny_pipeline(objects, azimuths, num_inference_steps=4, generator=generators, output_type="np")
    for i, (views, azimuth) in enumerate(zip(objects, azimuths)):
        single = run(tiny_pipeline, views, azimuth, seed=10 + i)
        np.testing.assert_allclose(batched.images[i], single.images[0], atol=1e-5)
        np.testing.assert_allclose(batched.view_weights[i], single.view_weights[0], atol=1e-5)


def test_view_batch_size_chunking_gives_the_same_result(tiny_pipeline, views16):
    objects = [views16[:2], views16[:5]]
    full = tiny_pipeline(objects, 30.0, num_inference_steps=3, generator=torch.Generator().manual_seed(0), output_type="np")
    chunked = tiny_pipeline(
        objects, 30.0, num_inference_steps=3, generator=torch.Generator().manual_seed(0), output_type="np", view_batch_size=2
    )
    np.testing.assert_allclose(full.images, chunked.images, atol=1e-5)


def test_num_images_per_prompt_and_weighting_off(tiny_pipeline, views16):
    out = run(tiny_pipeline, views16[:2], num_images_per_prompt=3)
    assert out.images.shape[0] == 3 and len(out.view_weights) == 3
    assert not np.allclose(out.images[0], out.images[1])
    equal = run(tiny_pipeline, views16[:4], weighting=False)
    np.testing.assert_allclose(equal.view_weights[0], 0.25)


@pytest.mark.parametrize("name", sorted(SCHEDULERS))
def test_every_named_scheduler_runs_and_is_seeded(tiny_pipeline, views16, name):
    tiny_pipeline.scheduler = scheduler_from_name(name, tiny_pipeline.scheduler.config)
    first, second = run(tiny_pipeline, views16[:3], seed=3), run(tiny_pipeline, views16[:3], seed=3)
    np.testing.assert_array_equal(first.images, second.images)
    assert not np.array_equal(first.images, run(tiny_pipeline, views16[:3], seed=4).images)
    assert np.isfinite(first.images).all()


def test_v_prediction_pipeline_runs(views16):
    pipe = make_tiny_pipeline(prediction_type="v_prediction")
    pipe.scheduler = scheduler_from_name("ddim", pipe.scheduler.config)
    assert pipe.scheduler.config.prediction_type == "v_prediction"
    assert np.isfinite(run(pipe, views16[:2]).images).all()


def test_callback_sees_and_can_replace_latents(tiny_pipeline, views16):
    seen = []

    def callback(pipe, i, t, kwargs):
        seen.append(i)
        return {"latents": torch.zeros_like(kwargs["latents"])}

    out = run(tiny_pipeline, views16[:2], steps=3, callback_on_step_end=callback)
    assert seen == [0, 1, 2]
    np.testing.assert_allclose(out.images, 0.5)


def test_save_and_load_gives_identical_outputs(tiny_pipeline, views16, tmp_path):
    tiny_pipeline.save_pretrained(tmp_path)
    assert (tmp_path / "model_index.json").exists()
    assert (tmp_path / "unet" / "diffusion_pytorch_model.safetensors").exists()
    assert not list(tmp_path.rglob("*.bin"))
    loaded = ViewFusionPipeline.from_pretrained(tmp_path)
    loaded.set_progress_bar_config(disable=True)
    np.testing.assert_array_equal(run(tiny_pipeline, views16[:3]).images, run(loaded, views16[:3]).images)


def test_load_by_repo_id_from_local_hub_cache_offline(tiny_pipeline, views16, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo_dir = tmp_path / "hub" / "models--someone--tiny-viewfusion"
    tiny_pipeline.save_pretrained(repo_dir / "snapshots" / commit)
    (repo_dir / "refs").mkdir()
    (repo_dir / "refs" / "main").write_text(commit)
    loaded = ViewFusionPipeline.from_pretrained("someone/tiny-viewfusion", cache_dir=tmp_path / "hub")
    loaded.set_progress_bar_config(disable=True)
    np.testing.assert_array_equal(run(tiny_pipeline, views16[:2]).images, run(loaded, views16[:2]).images)


def test_loading_a_folder_that_is_not_a_viewfusion_pipeline(tiny_pipeline, tmp_path):
    with pytest.raises(ValueError, match="no model_index.json"):
        ViewFusionPipeline.from_pretrained(tmp_path)
    tiny_pipeline.save_pretrained(tmp_path)
    index = json.loads((tmp_path / "model_index.json").read_text())
    index["_class_name"] = "DDPMPipeline"
    (tmp_path / "model_index.json").write_text(json.dumps(index))
    with pytest.raises(ValueError, match="not a ViewFusionPipeline"):
        ViewFusionPipeline.from_pretrained(tmp_path)


def test_rgba_and_grayscale_views_are_converted(tiny_pipeline):
    transparent = PIL.Image.new("RGBA", (16, 16), (255, 0, 0, 0))
    white = PIL.Image.new("RGB", (16, 16), (255, 255, 255))
    gray = PIL.Image.new("L", (16, 16), 255)
    outputs = [run(tiny_pipeline, [view]).images for view in (transparent, white, gray)]
    np.testing.assert_array_equal(outputs[0], outputs[1])
    np.testing.assert_array_equal(outputs[2], outputs[1])


def test_views_of_other_sizes_are_resized_with_a_warning(tiny_pipeline, views16):
    big = PIL.Image.fromarray(views16[0]).resize((32, 32))
    with pytest.warns(UserWarning, match="resizing it to the model's 16x16"):
        out = run(tiny_pipeline, [big, views16[1]])
    assert out.images.shape == (1, 16, 16, 3)


@pytest.mark.parametrize(
    "views, error, match",
    [
        ([], ValueError, "empty"),
        ([np.zeros((16, 12, 3), np.uint8)], ValueError, "must be square"),
        ([np.full((16, 16, 3), np.nan, np.float32)], ValueError, "NaN"),
        ([np.full((16, 16, 3), 2.0, np.float32)], ValueError, r"must lie in \[0, 1\]"),
        (["view.png"], TypeError, "PIL image, a numpy array or a torch tensor"),
        ([np.zeros((2, 16, 16, 3), np.uint8)], ValueError, "expected"),
    ],
)
def test_bad_views_raise_clear_errors(tiny_pipeline, views, error, match):
    with pytest.raises(error, match=match):
        run(tiny_pipeline, views)


def test_bad_arguments_raise_clear_errors(tiny_pipeline, views16):
    with pytest.raises(ValueError, match="2 objects but 3 target azimuths"):
        run(tiny_pipeline, [views16[:1], views16[:2]], azimuth=[0.0, 1.0, 2.0])
    with pytest.raises(TypeError, match="target_azimuth"):
        run(tiny_pipeline, views16[:1], azimuth="north")
    with pytest.raises(ValueError, match="output_type"):
        run(tiny_pipeline, views16[:1], output_type="jpeg")
    # A name fixes the settings that define it, whatever scheduler the config came from.
    sde = scheduler_from_name("dpmsolver-sde", tiny_pipeline.scheduler.config)
    assert sde.config.algorithm_type == "sde-dpmsolver++"
    assert scheduler_from_name("dpmsolver", sde.config).config.algorithm_type == "dpmsolver++"
    with pytest.raises(ValueError, match="Unknown scheduler 'euler'"):
        scheduler_from_name("euler", tiny_pipeline.scheduler.config)
    with pytest.raises(ValueError, match="one per image"):
        tiny_pipeline(views16[:1], 0.0, num_inference_steps=2, generator=[torch.Generator()] * 2)


def test_dropping_views_leaves_out_views_whose_weight_vanished(tiny_pipeline, views16):
    # Make the U-Net trust bright views overwhelmingly: the dark views' weights become ~1e-9 after the first step.
    bright, dark = torch.ones(3, 16, 16), torch.stack([torch.from_numpy(v).permute(2, 0, 1) / 255 * 0.2 for v in views16[:4]])
    objects = [torch.cat([dark[:2], bright[None], dark[2:]]), torch.cat([bright[None], dark[:2]])]
    boost = lambda module, args, output: (output[0], output[1] + 20.0 * (args[0][:, :3].mean(dim=(1, 2, 3)) > 0.5).view(-1, 1, 1, 1))
    tiny_pipeline.unet.register_forward_hook(boost)
    batch_sizes = []
    tiny_pipeline.unet.register_forward_pre_hook(lambda module, args: batch_sizes.append(args[0].shape[0]))

    call = lambda **kwargs: tiny_pipeline(objects, [0.0, 90.0], num_inference_steps=4, output_type="np",
                                          generator=[torch.Generator().manual_seed(s) for s in (0, 1)], **kwargs)
    full = call()
    assert batch_sizes == [8, 8, 8, 8]
    batch_sizes.clear()
    dropped = call(drop_views_below=0.5)
    assert batch_sizes == [8, 2, 2, 2]  # one bright view per object is left after the first step
    np.testing.assert_allclose(dropped.images, full.images, atol=1e-5)
    np.testing.assert_array_equal(dropped.view_weights[0][[0, 1, 3, 4]], 0.0)
    np.testing.assert_allclose(dropped.view_weights[0][2], 1.0)
    np.testing.assert_allclose(dropped.view_weights[1][0], 1.0)

    batch_sizes.clear()
    kept = call(drop_views_below=1e-12)  # nothing falls that low: the plain computation
    assert batch_sizes == [8, 8, 8, 8]
    np.testing.assert_array_equal(kept.images, full.images)
    with pytest.raises(ValueError, match="must lie in"):
        call(drop_views_below=1.5)
