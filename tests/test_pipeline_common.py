"""What diffusers checks for every pipeline (its `PipelineTesterMixin`), checked for `ViewFusionPipeline`.

Each test builds the pipeline from `get_dummy_components()` (a tiny U-Net and the paper's scheduler) and calls
it with `get_dummy_inputs(device, seed)`, as diffusers' own pipeline tests do.
"""

import inspect
import json

import numpy as np
import pytest
import torch
from conftest import TINY_UNET_32
from diffusers import DDIMScheduler, DDPMScheduler
from diffusers.callbacks import MultiPipelineCallbacks, PipelineCallback

from viewfusion_diffusers import ViewFusionPipeline, ViewFusionUNet2DModel, default_scheduler


# Arguments every diffusers pipeline takes, with diffusers' names.
REQUIRED_OPTIONAL_PARAMS = {
    "num_inference_steps",
    "num_images_per_prompt",
    "generator",
    "latents",
    "output_type",
    "return_dict",
    "callback_on_step_end",
    "callback_on_step_end_tensor_inputs",
}
PARAMS = {"input_views", "target_azimuth", "input_azimuths"}


def get_dummy_components(seed: int = 0) -> dict:
    torch.manual_seed(seed)
    unet = ViewFusionUNet2DModel(**{**TINY_UNET_32, "sample_size": 16}).eval()
    return {"unet": unet, "scheduler": default_scheduler()}


def get_dummy_inputs(device="cpu", seed: int = 0) -> dict:
    views = torch.rand(3, 3, 16, 16, generator=torch.Generator().manual_seed(100 + seed))
    return {
        "input_views": list(views),
        "target_azimuth": 90.0,
        "generator": torch.Generator(device="cpu").manual_seed(seed),
        "num_inference_steps": 2,
        "output_type": "np",
    }


def make_pipeline(**components) -> ViewFusionPipeline:
    pipe = ViewFusionPipeline(**{**get_dummy_components(), **components})
    pipe.set_progress_bar_config(disable=True)
    return pipe


def max_difference(a, b) -> float:
    return float(np.abs(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)).max())


def test_call_signature_has_the_common_arguments():
    parameters = inspect.signature(ViewFusionPipeline.__call__).parameters
    missing = (REQUIRED_OPTIONAL_PARAMS | PARAMS) - set(parameters)
    assert not missing, f"__call__ lacks {sorted(missing)}"
    for name in REQUIRED_OPTIONAL_PARAMS:
        assert parameters[name].default is not inspect.Parameter.empty, f"{name} must be optional"


def test_components_rebuild_the_pipeline():
    pipe = make_pipeline()
    assert set(pipe.components) == set(inspect.signature(ViewFusionPipeline.__init__).parameters) - {"self"}
    rebuilt = ViewFusionPipeline(**pipe.components)
    rebuilt.set_progress_bar_config(disable=True)
    np.testing.assert_array_equal(pipe(**get_dummy_inputs()).images, rebuilt(**get_dummy_inputs()).images)


def test_dict_and_tuple_outputs_are_equivalent():
    pipe = make_pipeline()
    as_dict = pipe(**get_dummy_inputs())
    images, view_weights = pipe(**get_dummy_inputs(), return_dict=False)
    np.testing.assert_array_equal(as_dict.images, images)
    for a, b in zip(as_dict.view_weights, view_weights):
        np.testing.assert_array_equal(a, b)


def test_batch_equals_single_calls():
    pipe = make_pipeline()
    inputs = [get_dummy_inputs(seed=s) for s in (0, 1)]
    batch = {
        "input_views": [i["input_views"] for i in inputs],
        "target_azimuth": [45.0, 200.0],
        "generator": [torch.Generator().manual_seed(s) for s in (0, 1)],
        "num_inference_steps": 2,
        "output_type": "np",
    }
    batched = pipe(**batch)
    for k, (single_inputs, azimuth) in enumerate(zip(inputs, batch["target_azimuth"])):
        single = pipe(**{**single_inputs, "target_azimuth": azimuth})
        assert max_difference(batched.images[k], single.images[0]) < 1e-5


@pytest.mark.parametrize("num_objects", [1, 2])
@pytest.mark.parametrize("num_images_per_prompt", [1, 3])
def test_num_images_per_prompt(num_objects, num_images_per_prompt):
    pipe = make_pipeline()
    inputs = get_dummy_inputs()
    inputs["input_views"] = [inputs["input_views"]] * num_objects
    out = pipe(**inputs, num_images_per_prompt=num_images_per_prompt)
    assert out.images.shape[0] == num_objects * num_images_per_prompt
    assert len(out.view_weights) == num_objects * num_images_per_prompt


def test_save_load_local(tmp_path):
    pipe = make_pipeline()
    expected = pipe(**get_dummy_inputs()).images
    pipe.save_pretrained(tmp_path)
    loaded = ViewFusionPipeline.from_pretrained(tmp_path)
    loaded.set_progress_bar_config(disable=True)
    assert max_difference(loaded(**get_dummy_inputs()).images, expected) < 1e-6
    for name, component in loaded.components.items():
        assert type(component) is type(pipe.components[name])


def test_diffusers_own_loader_takes_a_saved_folder_as_a_custom_pipeline(tmp_path):
    from diffusers import DiffusionPipeline

    pipe = make_pipeline()
    expected = pipe(**get_dummy_inputs()).images
    pipe.save_pretrained(tmp_path)
    loaded = DiffusionPipeline.from_pretrained(tmp_path, custom_pipeline=str(tmp_path), trust_remote_code=True)
    assert type(loaded) is ViewFusionPipeline and type(loaded.unet) is ViewFusionUNet2DModel
    loaded.set_progress_bar_config(disable=True)
    assert max_difference(loaded(**get_dummy_inputs()).images, expected) < 1e-6
    with pytest.raises(ValueError, match="trust_remote_code"):  # the folder's code runs only when asked to
        DiffusionPipeline.from_pretrained(tmp_path, custom_pipeline=str(tmp_path))


def test_save_load_optional_components(tmp_path):
    # ViewFusion has no optional component: both are needed to sample. What the common test checks then is that
    # a component passed to `from_pretrained` replaces the saved one.
    assert ViewFusionPipeline._optional_components == []
    make_pipeline().save_pretrained(tmp_path)
    ddim = DDIMScheduler.from_config(default_scheduler().config)
    loaded = ViewFusionPipeline.from_pretrained(tmp_path, scheduler=ddim)
    assert loaded.scheduler is ddim
    assert json.loads((tmp_path / "model_index.json").read_text())["scheduler"] == ["diffusers", "DDPMScheduler"]


def test_save_load_float16(tmp_path):
    pipe = make_pipeline()
    pipe.to(dtype=torch.float16)
    expected = pipe(**get_dummy_inputs()).images
    pipe.save_pretrained(tmp_path)
    loaded = ViewFusionPipeline.from_pretrained(tmp_path, dtype=torch.float16)
    loaded.set_progress_bar_config(disable=True)
    assert loaded.unet.dtype == torch.float16
    assert max_difference(loaded(**get_dummy_inputs()).images, expected) < 1e-3


def test_save_load_variant(tmp_path):
    pipe = make_pipeline()
    expected = pipe(**get_dummy_inputs()).images
    pipe.save_pretrained(tmp_path, variant="fp16")
    assert sorted(p.name for p in (tmp_path / "unet").iterdir()) == [
        "config.json",
        "diffusion_pytorch_model.fp16.safetensors",
    ]
    loaded = ViewFusionPipeline.from_pretrained(tmp_path, variant="fp16")
    loaded.set_progress_bar_config(disable=True)
    np.testing.assert_array_equal(loaded(**get_dummy_inputs()).images, expected)
    with pytest.raises(ValueError, match="variant=ema"):
        ViewFusionPipeline.from_pretrained(tmp_path, variant="ema")


def test_to_device_and_dtype():
    pipe = make_pipeline()
    pipe.to("cpu")
    assert {component.device.type for component in pipe.components.values() if hasattr(component, "device")} == {"cpu"}
    assert pipe.device.type == "cpu" and pipe.dtype == torch.float32
    pipe.to(dtype=torch.float16)
    assert pipe.unet.dtype == torch.float16 and pipe.dtype == torch.float16
    out = pipe(**{**get_dummy_inputs(), "output_type": "latent"})
    assert out.images.dtype == torch.float16 and torch.isfinite(out.images).all()


def test_components_from_config_give_the_same_pipeline():
    pipe = make_pipeline()
    unet = ViewFusionUNet2DModel.from_config(pipe.unet.config)
    unet.load_state_dict(pipe.unet.state_dict())
    scheduler = DDPMScheduler.from_config(pipe.scheduler.config)
    rebuilt = make_pipeline(unet=unet.eval(), scheduler=scheduler)
    np.testing.assert_array_equal(rebuilt(**get_dummy_inputs()).images, pipe(**get_dummy_inputs()).images)


def test_model_cpu_offload_sequence_and_forward_pass():
    pipe = make_pipeline()
    components = {name for name, c in pipe.components.items() if isinstance(c, torch.nn.Module)}
    assert set(pipe.model_cpu_offload_seq.split("->")) == components
    assert set(pipe._exclude_from_cpu_offload) <= components
    expected = pipe(**get_dummy_inputs()).images
    # diffusers needs an accelerator unless told the device; with "cpu" it installs the same hooks.
    pipe.enable_model_cpu_offload(device="cpu")
    assert pipe._execution_device.type == "cpu"
    assert max_difference(pipe(**get_dummy_inputs()).images, expected) < 1e-6
    assert max_difference(pipe(**get_dummy_inputs()).images, expected) < 1e-6  # hooks reset between calls


def test_progress_bar_config(capsys):
    pipe = ViewFusionPipeline(**get_dummy_components())
    pipe(**get_dummy_inputs())
    assert "2/2" in capsys.readouterr().err
    pipe.set_progress_bar_config(disable=True)
    pipe(**get_dummy_inputs())
    assert capsys.readouterr().err == ""


def test_callback_inputs_are_the_declared_tensors():
    pipe = make_pipeline()
    declared = pipe._callback_tensor_inputs
    assert "latents" in declared
    seen = []

    def check_all(pipe, i, t, callback_kwargs):
        seen.append(sorted(callback_kwargs))
        return callback_kwargs

    pipe(**get_dummy_inputs(), callback_on_step_end=check_all, callback_on_step_end_tensor_inputs=declared)
    assert seen == [sorted(declared)] * 2
    seen.clear()
    pipe(**get_dummy_inputs(), callback_on_step_end=check_all, callback_on_step_end_tensor_inputs=[])
    assert seen == [[]] * 2
    with pytest.raises(ValueError, match="callback_on_step_end_tensor_inputs"):
        pipe(**get_dummy_inputs(), callback_on_step_end=check_all, callback_on_step_end_tensor_inputs=["noise_pred"])


def test_callback_modifies_every_declared_tensor():
    pipe = make_pipeline()
    replaced = {"latents": lambda latents: torch.zeros_like(latents)}
    assert set(replaced) == set(pipe._callback_tensor_inputs)

    def replace_at_last_step(pipe, i, t, callback_kwargs):
        if i == pipe.num_timesteps - 1:
            callback_kwargs = {name: replaced[name](tensor) for name, tensor in callback_kwargs.items()}
        return callback_kwargs

    out = pipe(
        **{**get_dummy_inputs(), "output_type": "latent"},
        callback_on_step_end=replace_at_last_step,
        callback_on_step_end_tensor_inputs=pipe._callback_tensor_inputs,
    )
    assert out.images.abs().sum() == 0


class RecordLatentNorm(PipelineCallback):
    tensor_inputs = ["latents"]

    def callback_fn(self, pipeline, step_index, timestep, callback_kwargs):
        self.norms = getattr(self, "norms", []) + [float(callback_kwargs["latents"].norm())]
        return callback_kwargs


class ZeroLatentsAtCutoff(PipelineCallback):
    tensor_inputs = ["latents"]

    def callback_fn(self, pipeline, step_index, timestep, callback_kwargs):
        if step_index == self.config.cutoff_step_index:
            callback_kwargs["latents"] = torch.zeros_like(callback_kwargs["latents"])
        return callback_kwargs


def test_pipeline_callbacks_bring_their_tensor_inputs():
    pipe = make_pipeline()
    record = RecordLatentNorm()
    # `callback_on_step_end_tensor_inputs=[]` is overridden by the callback's own `tensor_inputs`.
    out = pipe(
        **{**get_dummy_inputs(), "num_inference_steps": 3},
        callback_on_step_end=MultiPipelineCallbacks(
            [record, ZeroLatentsAtCutoff(cutoff_step_ratio=None, cutoff_step_index=2)]
        ),
        callback_on_step_end_tensor_inputs=[],
    )
    assert len(record.norms) == 3 and record.norms[-1] > 0
    np.testing.assert_allclose(out.images, 0.5)


def test_interrupt_skips_the_remaining_steps():
    pipe = make_pipeline()
    pipe.scheduler = DDIMScheduler.from_config(pipe.scheduler.config)
    captured = {}

    def capture_after_step_1(pipe, i, t, callback_kwargs):
        if i == 1:
            captured["latents"] = callback_kwargs["latents"].clone()
        return callback_kwargs

    def interrupt_after_step_1(pipe, i, t, callback_kwargs):
        if i == 1:
            pipe._interrupt = True
        return callback_kwargs

    steps = []
    pipe.unet.register_forward_pre_hook(lambda module, args: steps.append(1))
    pipe(**{**get_dummy_inputs(), "num_inference_steps": 4}, callback_on_step_end=capture_after_step_1)
    assert len(steps) == 4 and pipe.num_timesteps == 4 and not pipe.interrupt
    steps.clear()
    out = pipe(
        **{**get_dummy_inputs(), "num_inference_steps": 4, "output_type": "latent"},
        callback_on_step_end=interrupt_after_step_1,
    )
    assert len(steps) == 2 and pipe.interrupt
    torch.testing.assert_close(out.images, captured["latents"], rtol=0, atol=0)
    # The next call starts uninterrupted.
    steps.clear()
    pipe(**get_dummy_inputs())
    assert len(steps) == 2 and not pipe.interrupt
