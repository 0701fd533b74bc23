"""The Gradio Space in a real subprocess, driven through its API and in a real browser."""

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import PIL.Image
import pytest

gradio_client = pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file  # noqa: E402  (after the importorskip)

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "examples" / "gradio_space" / "app.py"
EXAMPLES = sorted((ROOT / "examples" / "views").glob("object008_*.png"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def app_url(tiny_pipeline_32_dir):
    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
    process = subprocess.Popen([sys.executable, str(APP), "--pipeline", str(tiny_pipeline_32_dir), "--host", "127.0.0.1",
                                "--port", str(port)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.time() + 180
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2)
            break
        except OSError:
            assert process.poll() is None, process.stdout.read()
            time.sleep(0.5)
    else:
        process.kill()
        pytest.fail("the app did not start within 180 s")
    yield url
    process.terminate()
    process.wait(timeout=30)


def call(url, files, **overrides):
    settings = dict(azimuth=90, full_orbit=False, sampler="DDIM", steps=2, seed=0, num_samples=1, remove_background=False)
    settings.update(overrides)
    client = Client(url, verbose=False)
    return client.predict([handle_file(str(f)) for f in files], *settings.values(), api_name="/generate")


def test_generation_returns_views_of_the_model_size_and_weight_maps(app_url):
    novel, weights, orbit = call(app_url, EXAMPLES[:3], num_samples=2)
    assert len(novel) == 2 and orbit is None
    with PIL.Image.open(novel[0]["image"]) as image:
        assert image.size == (32, 32)
    assert len(weights) == 3 and "mean weight" in weights[0]["caption"]


def test_full_orbit_returns_a_24_frame_animation(app_url):
    novel, _, orbit = call(app_url, EXAMPLES[:1], full_orbit=True, steps=1)
    assert len(novel) == 24
    with PIL.Image.open(orbit) as gif:
        assert gif.n_frames == 24


@pytest.mark.parametrize(
    "make_files, message",
    [
        (lambda tmp: [], "Upload at least one view"),
        (lambda tmp: [EXAMPLES[0]] * 13, "at most 12"),
        (lambda tmp: [tmp / "notes.png"], "not an image"),
        (lambda tmp: [tmp / "huge.png"], "at most 4096 pixels"),
    ],
)
def test_bad_input_gives_a_message_and_the_app_keeps_serving(app_url, tmp_path, make_files, message):
    (tmp_path / "notes.png").write_text("not a picture")
    PIL.Image.new("L", (5000, 8)).save(tmp_path / "huge.png")
    with pytest.raises(Exception, match=message):
        call(app_url, make_files(tmp_path))
    assert len(call(app_url, EXAMPLES[:1])[0]) == 1


def test_eight_concurrent_requests_all_complete(app_url):
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda seed: call(app_url, EXAMPLES[:2], seed=seed), range(8)))
    assert all(len(novel) == 1 for novel, _, _ in results)


def test_background_removal_with_a_transformers_segmentation_model(tmp_path):
    """The real code path, with a tiny randomly initialised SegFormer built from a config."""
    from transformers import SegformerConfig, SegformerForSemanticSegmentation, SegformerImageProcessor, pipeline

    from viewfusion_diffusers.preprocessing import has_plain_background, prepare_photo

    config = SegformerConfig(num_encoder_blocks=2, depths=[1, 1], sr_ratios=[2, 1], hidden_sizes=[8, 16], patch_sizes=[7, 3],
                             strides=[4, 2], num_attention_heads=[1, 1], mlp_ratios=[2, 2], decoder_hidden_size=16, num_labels=3)
    SegformerForSemanticSegmentation(config).save_pretrained(tmp_path / "segformer")
    SegformerImageProcessor(size={"height": 64, "width": 64}).save_pretrained(tmp_path / "segformer")
    segmenter = pipeline("image-segmentation", model=str(tmp_path / "segformer"))

    rng = np.random.default_rng(0)
    photo = rng.integers(0, 200, size=(120, 160, 3), dtype=np.uint8)  # a cluttered background
    photo[40:80, 60:100] = (200, 30, 30)
    photo = PIL.Image.fromarray(photo)
    assert not has_plain_background(photo)
    view = prepare_photo(photo, 32, segmenter)
    assert view.size == (32, 32) and view.mode == "RGB"
    assert prepare_photo(photo, 32, None).size == (32, 32)  # the switch off: no segmentation
    rgba = PIL.Image.new("RGBA", (50, 50), (0, 0, 255, 0))
    assert np.asarray(prepare_photo(rgba, 32)).min() == 255  # transparent -> white


@pytest.mark.skipif(shutil.which("chromium") is None, reason="needs Debian's chromium (installed by .ci/run)")
def test_in_a_real_browser(app_url, tmp_path):
    playwright = pytest.importorskip("playwright.sync_api")
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium"), args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(app_url)
        page.locator("#views input[type=file]").set_input_files([str(f) for f in EXAMPLES[:3]])
        page.wait_for_timeout(1000)
        page.locator("#generate").click()
        page.locator("#novel img").first.wait_for(timeout=120_000)
        page.screenshot(path=str(tmp_path / "space.png"), full_page=True)
        browser.close()
    with PIL.Image.open(tmp_path / "space.png") as screenshot:
        assert screenshot.width == 1280
    if os.environ.get("VIEWFUSION_SCREENSHOT_DIR"):  # CI keeps the screenshot to look at
        shutil.copy(tmp_path / "space.png", Path(os.environ["VIEWFUSION_SCREENSHOT_DIR"]) / "space.png")
