"""Posed and unposed inputs in one model: `input_azimuths` in the pipeline."""

import pytest
import torch
from conftest import make_tiny_pipeline


def posed_pipeline():
    pipe = make_tiny_pipeline(relative_pose=True)
    with torch.no_grad():  # give the zero-initialised pose layers some weight, as training would
        for parameter in pipe.unet.class_embedding.relative_azimuth.linear_2.parameters():
            parameter.normal_(0, 0.5)
        pipe.unet.class_embedding.unknown_pose.normal_(0, 0.5)
    return pipe


def sample(pipe, views, target, input_azimuths, seeds):
    generators = [torch.Generator().manual_seed(s) for s in seeds]
    return pipe(
        views, target, input_azimuths=input_azimuths, num_inference_steps=3, generator=generators, output_type="pt"
    )


def test_posed_and_unposed_objects_in_one_batch_equal_one_by_one(views16):
    pipe = posed_pipeline()
    objects = [views16[:2], views16[2:5]]
    batched = sample(pipe, objects, [90.0, 180.0], [[0.0, 45.0], None], seeds=[0, 1])
    posed = sample(pipe, objects[0], 90.0, [0.0, 45.0], seeds=[0])
    unposed = sample(pipe, objects[1], 180.0, None, seeds=[1])
    torch.testing.assert_close(batched.images[0], posed.images[0], atol=1e-5, rtol=0)
    torch.testing.assert_close(batched.images[1], unposed.images[0], atol=1e-5, rtol=0)
    assert (posed.images[0] - sample(pipe, objects[0], 90.0, None, seeds=[0]).images[0]).abs().max() > 1e-4


def test_input_azimuths_are_reduced_mod_360(views16):
    pipe = posed_pipeline()
    a = sample(pipe, views16[:2], 90.0, [0.0, 45.0], seeds=[0])
    b = sample(pipe, views16[:2], 90.0 + 3600, [360.0 * 1e6, 45.0 - 720], seeds=[0])
    torch.testing.assert_close(a.images, b.images, atol=1e-5, rtol=0)


@pytest.mark.parametrize(
    "input_azimuths, error, match",
    [
        ([0.0], ValueError, "1 azimuths for 2 input views"),
        ([0.0, float("nan")], ValueError, "finite"),
        (["front", "back"], TypeError, "list of degrees"),
    ],
)
def test_bad_input_azimuths_are_refused(views16, input_azimuths, error, match):
    with pytest.raises(error, match=match):
        sample(posed_pipeline(), views16[:2], 90.0, input_azimuths, seeds=[0])


def test_a_pose_free_pipeline_refuses_input_azimuths(views16):
    with pytest.raises(ValueError, match="trained without poses"):
        sample(make_tiny_pipeline(), views16[:2], 90.0, [0.0, 90.0], seeds=[0])


def test_a_view_of_unknown_azimuth_among_posed_ones(views16):
    pipe = posed_pipeline()
    partly = sample(pipe, views16[:2], 90.0, [None, 45.0], seeds=[0]).images
    assert (partly - sample(pipe, views16[:2], 90.0, None, seeds=[0]).images).abs().max() > 1e-4
    assert (partly - sample(pipe, views16[:2], 90.0, [0.0, 45.0], seeds=[0]).images).abs().max() > 1e-4


def test_the_orbit_gives_a_posed_pipeline_its_generated_frames_azimuths(views16, monkeypatch):
    from viewfusion_diffusers.orbit import sample_orbit

    pipe = posed_pipeline()
    seen = []
    call = type(pipe).__call__

    def recording_call(self, *args, **kwargs):
        seen.append(kwargs.get("input_azimuths"))
        return call(self, *args, **kwargs)

    monkeypatch.setattr(type(pipe), "__call__", recording_call)
    sample_orbit(pipe, [views16[0]], num_frames=3, num_inference_steps=2, max_views=3)
    assert seen == [[None], [None, 0.0], [None, 0.0, 120.0]]
