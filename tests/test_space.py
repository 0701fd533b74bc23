"""The Gradio Space in a real subprocess, driven through its API and in a real browser."""

import importlib.util
import json
import math
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import PIL.Image
import pytest
import torch


gradio_client = pytest.importorskip("gradio_client")
from conftest import TINY_UNET_32  # noqa: E402
from gradio_client import Client, handle_file  # noqa: E402  (after the importorskip)

from viewfusion_diffusers import ViewFusionPipeline, ViewFusionUNet2DModel, default_scheduler  # noqa: E402
from viewfusion_diffusers.images import weights_to_heatmap  # noqa: E402


ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "examples" / "gradio_space" / "app.py"
EXAMPLES = sorted((ROOT / "examples" / "views").glob("object008_*.png"))
VIEWPORT = {"width": 1280, "height": 900}
CHROMIUM = shutil.which("chromium")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_app(pipeline_dir, args=(), env=None):
    """Run the app in a subprocess until it answers; yields its URL and stops it afterwards."""
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "OMP_NUM_THREADS": "1",
        "GRADIO_ANALYTICS_ENABLED": "False",
        **(env or {}),
    }
    process = subprocess.Popen(
        [sys.executable, str(APP), "--pipeline", str(pipeline_dir), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    return process


def wait_for(process, url):
    deadline = time.time() + 180
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2)
            return url
        except OSError:
            if process.poll() is not None:
                pytest.fail(f"the app exited:\n{process.stdout.read()}")
            time.sleep(0.5)
    process.kill()
    pytest.fail("the app did not start within 180 s")


def stop(process):
    process.terminate()
    process.wait(timeout=30)


@pytest.fixture(scope="module")
def app_url(tiny_pipeline_32_dir):
    """The pose-free app, told its address the way a Space does: by Gradio's environment variables."""
    port = free_port()
    process = start_app(tiny_pipeline_32_dir, env={"GRADIO_SERVER_NAME": "127.0.0.1", "GRADIO_SERVER_PORT": str(port)})
    yield wait_for(process, f"http://127.0.0.1:{port}/")
    stop(process)


@pytest.fixture(scope="module")
def posed_app_url(tmp_path_factory):
    """The app with a posed pipeline (random pose weights, so the azimuths change the output), told its address by
    flags, which win over the environment."""
    folder = tmp_path_factory.mktemp("tiny-posed-pipeline-32")
    torch.manual_seed(0)
    unet = ViewFusionUNet2DModel(**TINY_UNET_32, relative_pose=True)
    torch.nn.init.normal_(unet.class_embedding.relative_azimuth.linear_2.weight)
    ViewFusionPipeline(unet, default_scheduler()).save_pretrained(folder)
    port = free_port()
    process = start_app(
        folder, ["--host", "127.0.0.1", "--port", str(port)], env={"GRADIO_SERVER_PORT": str(free_port())}
    )
    yield wait_for(process, f"http://127.0.0.1:{port}/")
    stop(process)


def call(url, files, **overrides):
    settings = dict(
        view_azimuths="",
        azimuth=90,
        full_orbit=False,
        sampler="DDIM",
        steps=2,
        seed=0,
        num_samples=1,
        remove_background=False,
    )
    settings.update(overrides)
    client = Client(url, verbose=False)
    views = [{"image": handle_file(str(f)), "caption": None} for f in files]
    return client.predict(views, *settings.values(), api_name="/generate")


def test_generation_returns_views_of_the_model_size_and_a_weight_panel_with_its_colour_bar(app_url):
    novel, weights, summary, orbit = call(app_url, EXAMPLES[:3], num_samples=2)
    assert len(novel) == 2 and orbit is None
    with PIL.Image.open(novel[0]["image"]) as image:
        assert image.size == (32, 32)
    assert "Mean weights: view 1:" in summary and "view 3:" in summary
    with PIL.Image.open(weights) as panel:
        panel = np.asarray(panel.convert("RGB"))
    # The colour bar's ends (weight 1 and weight 0) are drawn right of the three view tiles.
    ramp_ends = weights_to_heatmap(np.array([1.0, 0.0]).reshape(2, 1, 1, 1).repeat(3, axis=1))[:, 0, 0]
    legend = panel[:, 3 * 106 :].reshape(-1, 3)
    for colour in ramp_ends:
        assert (np.abs(legend.astype(int) - colour).sum(axis=1) <= 6).any(), colour


def test_full_orbit_returns_a_24_frame_animation(app_url):
    novel, weights, _, orbit = call(app_url, EXAMPLES[:1], full_orbit=True, steps=1)
    assert len(novel) == 24 and weights is None
    with PIL.Image.open(orbit) as gif:
        assert gif.n_frames == 24


@pytest.mark.parametrize(
    "make_files, overrides, message",
    [
        (lambda tmp: [], {}, "Upload at least one view"),
        (lambda tmp: [EXAMPLES[0]] * 13, {}, "at most 12"),
        (lambda tmp: [tmp / "notes.png"], {}, "not an image"),
        (lambda tmp: [tmp / "huge.png"], {}, "at most 4096 pixels"),
        (lambda tmp: EXAMPLES[:1], {"steps": 2.5}, "Denoising steps must be a whole number"),
        (lambda tmp: EXAMPLES[:2], {"view_azimuths": "0, 90"}, "trained without poses"),
    ],
)
def test_bad_input_gives_a_message_and_the_app_keeps_serving(app_url, tmp_path, make_files, overrides, message):
    (tmp_path / "notes.png").write_text("not a picture")
    PIL.Image.new("L", (5000, 8)).save(tmp_path / "huge.png")
    with pytest.raises(Exception, match=message):
        call(app_url, make_files(tmp_path), **overrides)
    assert len(call(app_url, EXAMPLES[:1])[0]) == 1


@pytest.mark.parametrize(
    "index, value, message",
    [
        (2, math.nan, "Target azimuth must be a finite number"),
        (2, -math.inf, "Value -inf is less than minimum value 0"),  # Gradio's own range check
        (5, math.nan, "Denoising steps must be a finite number"),
        (6, math.inf, "Seed must be a finite number"),
    ],
)
def test_non_finite_numbers_sent_over_http_get_a_message(app_url, index, value, message):
    """JSON clients can send NaN and Infinity; NaN passes every range check."""
    data = [[], "", 90, False, "DDIM", 2, 0, 1, False]
    data[index] = value
    request = urllib.request.Request(
        f"{app_url}gradio_api/call/generate",
        data=json.dumps({"data": data}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        event_id = json.loads(response.read())["event_id"]
    with urllib.request.urlopen(f"{app_url}gradio_api/call/generate/{event_id}", timeout=60) as response:
        events = response.read().decode()
    assert "event: error" in events and message in events, events


def test_eight_concurrent_requests_all_complete(app_url):
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda seed: call(app_url, EXAMPLES[:2], seed=seed), range(8)))
    assert all(len(result[0]) == 1 for result in results)


def test_a_posed_pipeline_uses_the_azimuths_of_the_views(posed_app_url):
    def novel_pixels(**overrides):
        novel = call(posed_app_url, EXAMPLES[:3], **overrides)[0]
        with PIL.Image.open(novel[0]["image"]) as image:
            return np.asarray(image, dtype=np.int16)

    unposed, posed = novel_pixels(), novel_pixels(view_azimuths="0, 90, 180")
    assert np.abs(posed - unposed).max() > 0  # the same noise: only the azimuths differ
    np.testing.assert_array_equal(novel_pixels(view_azimuths="0 90 180"), posed)
    for typed, message in [
        ("0, 90", "2 azimuths for 3 uploaded views"),
        ("0, north, 180", "Azimuth 2 of your views must be a number"),
        ("0, nan, 180", "Azimuth 2 of your views must be a finite number"),
    ]:
        with pytest.raises(Exception, match=message):
            call(posed_app_url, EXAMPLES[:3], view_azimuths=typed)
    orbit = call(posed_app_url, EXAMPLES[:1], view_azimuths="0", full_orbit=True, steps=1)[3]
    with PIL.Image.open(orbit) as gif:
        assert gif.n_frames == 24


def test_the_api_names_its_inputs_and_outputs_and_keeps_optional_inputs_optional(app_url):
    endpoint = Client(app_url, verbose=False).view_api(return_format="dict", print_info=False)["named_endpoints"][
        "/generate"
    ]
    assert [r["label"] for r in endpoint["returns"]] == ["Novel views", "Weights", "Summary", "Orbit"]
    parameters = {p["parameter_name"]: p for p in endpoint["parameters"]}
    assert parameters["files"]["label"] == "Your views"
    assert parameters["view_azimuths"]["parameter_has_default"]
    # Left out, as the API now allows, it is the empty default.
    novel, *_ = Client(app_url, verbose=False).predict(
        [{"image": handle_file(str(EXAMPLES[0])), "caption": None}],
        azimuth=90,
        steps=1,
        remove_background=False,
        api_name="/generate",
    )
    assert len(novel) == 1


def test_a_damaged_pipeline_stops_the_app_with_one_line(tiny_pipeline_32_dir, tmp_path):
    folder = tmp_path / "pipeline"
    shutil.copytree(tiny_pipeline_32_dir, folder)
    weights = folder / "unet" / "diffusion_pytorch_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, str(APP), "--pipeline", str(folder)], capture_output=True, text=True, env=env, timeout=120
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert f"{weights} is truncated" in result.stderr.strip().splitlines()[-1]


def test_background_removal_that_cannot_load_its_model_says_how_to_go_on(tiny_pipeline_32_dir, tmp_path):
    """Offline, with a model that is not in the cache: the message says to untick the option."""
    photo = tmp_path / "photo.png"
    rng = np.random.default_rng(0)
    PIL.Image.fromarray(rng.integers(0, 255, (48, 48, 3), dtype=np.uint8)).save(photo)  # no plain background
    port = free_port()
    process = start_app(
        tiny_pipeline_32_dir,
        ["--host", "127.0.0.1", "--port", str(port), "--segmentation_model", "nobody/not-a-cached-model"],
    )
    try:
        url = wait_for(process, f"http://127.0.0.1:{port}/")
        with pytest.raises(Exception, match="untick 'Remove photo backgrounds'"):
            call(url, [photo], remove_background=True)
        assert len(call(url, [photo], remove_background=False)[0]) == 1
    finally:
        stop(process)


def test_the_app_serves_a_pipeline_converted_from_the_authors_checkpoint(tmp_path):
    """`viewfusion convert`'s folder, named by $VIEWFUSION_PIPELINE as a Space would: it samples in [0, 1] pixels, on
    the noise level, with any of the app's samplers."""
    fixture = ROOT / "tests" / "data" / "original-viewfusion" / "tiny"
    folder = tmp_path / "converted"
    ViewFusionPipeline.from_single_file(
        fixture / "best_model_all.pt", config_file=fixture / "config.yaml"
    ).save_pretrained(folder)
    port = free_port()
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "OMP_NUM_THREADS": "1",
        "GRADIO_ANALYTICS_ENABLED": "False",
        "VIEWFUSION_PIPELINE": str(folder),
    }
    process = subprocess.Popen(
        [sys.executable, str(APP), "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        url = wait_for(process, f"http://127.0.0.1:{port}/")
        size = ViewFusionPipeline.from_pretrained(folder).unet.config.sample_size
        for sampler in ("DDPM", "DDIM"):
            novel, weights, summary, _ = call(url, EXAMPLES[:2], sampler=sampler, steps=3)
            with PIL.Image.open(novel[0]["image"]) as image:
                pixels = np.asarray(image.convert("RGB"))
            assert image.size == (size, size)
            assert pixels.std() > 0, sampler  # a real sample, not a flat image
            assert "view 2:" in summary
    finally:
        stop(process)


def test_background_removal_with_a_transformers_segmentation_model(tmp_path):
    """The real code path, with a tiny randomly initialised SegFormer built from a config."""
    from transformers import SegformerConfig, SegformerForSemanticSegmentation, SegformerImageProcessor, pipeline

    from viewfusion_diffusers.preprocessing import has_plain_background, prepare_photo

    config = SegformerConfig(
        num_encoder_blocks=2,
        depths=[1, 1],
        sr_ratios=[2, 1],
        hidden_sizes=[8, 16],
        patch_sizes=[7, 3],
        strides=[4, 2],
        num_attention_heads=[1, 1],
        mlp_ratios=[2, 2],
        decoder_hidden_size=16,
        num_labels=3,
    )
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


# For every image in the page: where its picture is drawn (the box less object-fit's margins), and the boxes
# of the ancestors that clip it (overflow other than visible), so the test can tell whether it is seen whole.
MEASURE_IMAGES = """() => Array.from(document.querySelectorAll('#views, #examples, #novel, #weights, #orbit'))
  .flatMap(block => Array.from(block.querySelectorAll('img')).map(img => {
    const box = img.getBoundingClientRect(), style = getComputedStyle(img);
    let width = box.width, height = box.height;
    if (style.objectFit === 'contain' || style.objectFit === 'scale-down') {
      let scale = Math.min(box.width / img.naturalWidth, box.height / img.naturalHeight);
      if (style.objectFit === 'scale-down') scale = Math.min(scale, 1);
      width = img.naturalWidth * scale; height = img.naturalHeight * scale;
    }
    const drawn = {left: box.x + (box.width - width) / 2, top: box.y + (box.height - height) / 2, width, height};
    const clips = [];
    for (let e = img.parentElement; e; e = e.parentElement) {
      const s = getComputedStyle(e);
      if (s.overflow !== 'visible' || s.overflowX !== 'visible' || s.overflowY !== 'visible') {
        const r = e.getBoundingClientRect();
        clips.push({name: e.tagName + '.' + e.className, left: r.x, top: r.y, width: r.width, height: r.height});
      }
    }
    return {block: block.id, natural: [img.naturalWidth, img.naturalHeight], drawn, clips};
  }))"""
MEASURE_CAPTIONS = """() => Array.from(document.querySelectorAll(
    '[data-testid="block-label"], .caption-label, figcaption, .icon-button-wrapper, .block-info'))
  .filter(e => e.offsetParent !== null)
  .map(e => {
    const r = e.getBoundingClientRect();
    return {text: e.textContent.trim(), left: r.x, top: r.y, width: r.width, height: r.height};
  })"""


def inside(inner, outer, slack=1.0):
    return (
        inner["left"] >= outer["left"] - slack
        and inner["top"] >= outer["top"] - slack
        and inner["left"] + inner["width"] <= outer["left"] + outer["width"] + slack
        and inner["top"] + inner["height"] <= outer["top"] + outer["height"] + slack
    )


def overlap(a, b):
    return (
        a["left"] < b["left"] + b["width"]
        and b["left"] < a["left"] + a["width"]
        and a["top"] < b["top"] + b["height"]
        and b["top"] < a["top"] + a["height"]
    )


def assert_every_image_is_seen_whole(page):
    """Every image drawn with its own aspect ratio, not cut by any box around it, and inside the first screen."""
    images = page.evaluate(MEASURE_IMAGES)
    screen = {"left": 0, "top": 0, **VIEWPORT}
    for image in images:
        name, natural, drawn = image["block"], image["natural"], image["drawn"]
        assert natural[0] > 0, f"an image in #{name} did not load"
        assert drawn["width"] / drawn["height"] == pytest.approx(natural[0] / natural[1], rel=0.02), image
        for clip in image["clips"]:
            assert inside(drawn, clip), f"an image in #{name} is cut off by {clip['name']}: {drawn} vs {clip}"
        assert inside(drawn, screen), f"an image in #{name} is outside the first screen: {drawn}"
    captions = page.evaluate(MEASURE_CAPTIONS)
    for caption in captions:
        for image in images:
            assert not overlap(caption, image["drawn"]), f"{caption['text']!r} covers an image in #{image['block']}"
    return images


@pytest.mark.skipif(CHROMIUM is None, reason="needs Chromium for the browser test: apt-get install chromium")
def test_in_a_real_browser_a_visitor_sees_inputs_output_and_weights_whole(app_url, tiny_pipeline_32_dir, tmp_path):
    playwright = pytest.importorskip("playwright.sync_api")
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"],
        )
        page = browser.new_page(viewport=VIEWPORT)
        page.goto(app_url)
        page.locator("#examples img").first.wait_for()
        header = page.locator("#header").inner_text()
        assert (
            tiny_pipeline_32_dir.name in header and str(tiny_pipeline_32_dir) not in page.locator("body").inner_text()
        )
        assert not page.locator("#orbit").is_visible() and page.locator("#views img").count() == 0
        assert len(assert_every_image_is_seen_whole(page)) == 2  # the two example objects

        page.locator("#views input[type=file]").set_input_files([str(f) for f in EXAMPLES])  # a full row of thumbnails
        page.locator("#views img").nth(len(EXAMPLES) - 1).wait_for()
        page.wait_for_timeout(500)
        assert (
            [image["block"] for image in assert_every_image_is_seen_whole(page)].count("views") == len(EXAMPLES) == 4
        )

        page.locator("#examples img").first.click()  # three views of the first object, aimed at its fourth
        playwright.expect(page.locator("#views img")).to_have_count(3)
        playwright.expect(page.locator("#azimuth input[type=number]")).to_have_value("270")
        page.locator("#generate").click()
        page.locator("#weights img").wait_for(timeout=120_000)
        page.locator("#novel img").first.wait_for()
        page.wait_for_timeout(500)  # let the gallery settle its layout
        images = assert_every_image_is_seen_whole(page)
        assert [image["block"] for image in images].count("views") == 3
        assert {"novel", "weights"} <= {image["block"] for image in images}
        assert not page.locator("#orbit").is_visible()
        assert "Mean weights" in page.locator("#summary").inner_text()
        page.screenshot(path=str(tmp_path / "space.png"), full_page=True)
        novel = next(image["drawn"] for image in images if image["block"] == "novel")
        browser.close()
    with PIL.Image.open(tmp_path / "space.png") as screenshot:
        # What the browser painted where the novel view is: the model's (random, so noisy) picture, not a blank.
        crop = screenshot.convert("RGB").crop(
            (
                round(novel["left"]) + 4,
                round(novel["top"]) + 4,
                round(novel["left"] + novel["width"]) - 4,
                round(novel["top"] + novel["height"]) - 4,
            )
        )
        assert np.asarray(crop, dtype=np.float32).std() > 10
    if os.environ.get("VIEWFUSION_SCREENSHOT_DIR"):  # the README's screenshot comes from here
        shutil.copy(tmp_path / "space.png", Path(os.environ["VIEWFUSION_SCREENSHOT_DIR"]) / "space.png")


def test_a_grayscale_upload_is_used_as_rgb_with_a_warning_and_a_colour_one_without(tmp_path):
    # Outside a request, gr.Warning is a Python warning; in the page it is the same message as a toast.
    spec = importlib.util.spec_from_file_location("viewfusion_space_app", APP)
    app = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(app)
    gray, colour = tmp_path / "gray.png", tmp_path / "colour.png"
    PIL.Image.new("L", (32, 32), 128).save(gray)
    PIL.Image.new("RGB", (32, 32), (200, 30, 30)).save(colour)

    with pytest.warns(UserWarning, match=r"gray\.png is grayscale; using it as RGB"):
        views = app.read_views([str(colour), (str(gray), None)])
    assert [view.size for view in views] == [(32, 32), (32, 32)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        app.read_views([str(colour)])
