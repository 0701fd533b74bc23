"""`ViewProcessor`: one conversion of views for sampling, the datasets and photos."""

import warnings

import numpy as np
import PIL.Image
import pytest
import torch

from viewfusion_diffusers import ViewProcessor
from viewfusion_diffusers.image_processor import RESIZE_MODE


def half_transparent_red(size=(8, 8)) -> PIL.Image.Image:
    return PIL.Image.new("RGBA", size, (255, 0, 0, 128))


def test_compositing_on_white_is_one_rule_for_tensors_and_images():
    alpha = 128 / 255
    expected = torch.tensor([1.0, 1 - alpha, 1 - alpha])  # red * alpha + white * (1 - alpha)
    tensor = ViewProcessor.composite_on_white(ViewProcessor.to_float_tensor(half_transparent_red()))
    torch.testing.assert_close(tensor[:, 0, 0], expected)
    image = ViewProcessor.composite_on_white(half_transparent_red())
    assert image.mode == "RGB" and image.getpixel((0, 0)) == tuple(round(255 * v) for v in expected.tolist())
    gray = ViewProcessor.composite_on_white(PIL.Image.new("LA", (4, 4), (50, 0)))
    assert gray.getpixel((0, 0)) == (255, 255, 255)
    palette = PIL.Image.new("RGB", (4, 4), (10, 20, 30)).convert("P")
    assert ViewProcessor.composite_on_white(palette).getpixel((0, 0)) == palette.convert("RGB").getpixel((0, 0))


def test_dataset_photos_and_pipeline_share_the_rule(tmp_path):
    from viewfusion_diffusers.data.dataset import read_view

    path = tmp_path / "0000.png"
    half_transparent_red().save(path)
    from_dataset = read_view(path)
    assert from_dataset.dtype == np.uint8 and from_dataset.shape == (8, 8, 3)
    np.testing.assert_array_equal(from_dataset, np.asarray(ViewProcessor.composite_on_white(half_transparent_red())))
    # The pipeline's views in [-1, 1] are the same pixels.
    views = ViewProcessor().preprocess([half_transparent_red()], 8, 8)
    np.testing.assert_allclose((views[0].permute(1, 2, 0).numpy() + 1) / 2 * 255, from_dataset, atol=0.5)


def test_preprocess_accepts_every_view_kind():
    processor = ViewProcessor()
    array = np.random.default_rng(0).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    kinds = [
        PIL.Image.fromarray(array),
        array,
        array / 255.0,
        torch.from_numpy(array).permute(2, 0, 1),
        torch.from_numpy(array).permute(2, 0, 1) / 255.0,
    ]
    results = [processor.preprocess([view], 8, 8) for view in kinds]
    for result in results:
        assert result.shape == (1, 3, 8, 8) and result.dtype == torch.float32
        torch.testing.assert_close(result, results[0], atol=1e-6, rtol=0)
    assert results[0].min() >= -1 and results[0].max() <= 1
    stacked = torch.from_numpy(np.stack([array, array])).permute(0, 3, 1, 2) / 255.0
    assert processor.preprocess(stacked, 8, 8).shape == (2, 3, 8, 8)


def test_resize_is_bicubic_antialiased_and_clamped():
    assert RESIZE_MODE == "bicubic"
    checker = (torch.arange(64)[:, None] + torch.arange(64)[None, :]) % 2
    image = checker.float().expand(1, 3, 64, 64).contiguous()
    resized = ViewProcessor.resize(image, 16, 16)
    # Antialiasing averages the checkerboard to grey; without it, every output pixel would be 0 or 1.
    torch.testing.assert_close(resized[0, :, 4:-4, 4:-4], torch.full((3, 8, 8), 0.5), atol=0.02, rtol=0)
    edge = torch.zeros(1, 1, 8, 8)
    edge[..., 4:] = 1
    upsampled = ViewProcessor.resize(edge, 32, 32)
    assert upsampled.min() == 0 and upsampled.max() == 1  # bicubic overshoot is clamped
    assert ViewProcessor.resize(edge * 2 - 1, 32, 32, value_range=(-1, 1)).min() == -1
    assert ViewProcessor.resize(image, 64, 64) is image


def test_preprocess_resizes_with_a_warning_and_refuses_other_aspect_ratios():
    processor = ViewProcessor()
    with pytest.warns(UserWarning, match=r"views\[0\] is 32x32; resizing it to the model's 16x16"):
        assert processor.preprocess([np.zeros((32, 32, 3), np.uint8)], 16, 16, name="views").shape == (1, 3, 16, 16)
    with pytest.raises(ValueError, match=r"is 12x16; views must be square"):
        processor.preprocess([np.zeros((16, 12, 3), np.uint8)], 16, 16)
    with pytest.warns(UserWarning, match="resizing"):
        assert processor.preprocess([np.zeros((32, 48, 3), np.uint8)], 16, 24).shape == (1, 3, 16, 24)
    with pytest.raises(ValueError, match=r"views must be 24:16 \(width:height\)"):
        processor.preprocess([np.zeros((16, 16, 3), np.uint8)], 16, 24)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ViewProcessor(warn_on_resize=False).preprocess([np.zeros((32, 32, 3), np.uint8)], 16, 16)


@pytest.mark.parametrize(
    "views, error, match",
    [
        ([], ValueError, "input_views is empty"),
        ([np.full((8, 8, 3), np.nan, np.float32)], ValueError, "NaN"),
        ([np.full((8, 8, 3), 2.0, np.float32)], ValueError, r"must lie in \[0, 1\]"),
        ([np.zeros((8, 8, 3), np.int32)], TypeError, "use uint8 in \\[0, 255\\] or float in \\[0, 1\\]"),
        (["view.png"], TypeError, "PIL image, a numpy array or a torch tensor"),
        ([torch.zeros(5, 8, 8)], ValueError, r"expected \(3, H, W\) or \(4, H, W\)"),
    ],
)
def test_bad_views_raise_clear_errors(views, error, match):
    with pytest.raises(error, match=match):
        ViewProcessor().preprocess(views, 8, 8)


def test_postprocess_output_types():
    processor = ViewProcessor()
    images = torch.linspace(-1.2, 1.2, 2 * 3 * 4 * 4).reshape(2, 3, 4, 4)
    assert processor.postprocess(images, "latent") is images
    pt = processor.postprocess(images, "pt")
    torch.testing.assert_close(pt, (images / 2 + 0.5).clamp(0, 1))
    as_np = processor.postprocess(images, "np")
    assert as_np.shape == (2, 4, 4, 3)
    np.testing.assert_array_equal(as_np, pt.permute(0, 2, 3, 1).numpy())
    pil = processor.postprocess(images, "pil")
    assert len(pil) == 2 and pil[0].size == (4, 4)
    np.testing.assert_array_equal(np.asarray(pil[1]), (as_np[1] * 255).round().astype(np.uint8))
    with pytest.raises(ValueError, match="`output_type` must be one of 'pil', 'np', 'pt', 'latent'"):
        processor.postprocess(images, "jpeg")


def test_config_round_trip(tmp_path):
    ViewProcessor(warn_on_resize=False).save_config(tmp_path)
    assert ViewProcessor.from_config(ViewProcessor.load_config(tmp_path)).config.warn_on_resize is False
