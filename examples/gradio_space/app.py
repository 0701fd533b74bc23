"""ViewFusion demo: novel views of an object from any number of views, with or without their azimuths.

    python examples/gradio_space/app.py [--pipeline FOLDER_OR_REPO_ID] [--host 127.0.0.1] [--port 7860]

The pipeline comes from `--pipeline`, else `$VIEWFUSION_PIPELINE`, else the one shipped in `pipelines/`. The
address comes from `--host` / `--port`, else Gradio's `$GRADIO_SERVER_NAME` / `$GRADIO_SERVER_PORT` (which a
Space sets), else 127.0.0.1:7860. The pipeline is loaded once; each request gets its own scheduler (schedulers
keep per-run state) and shares the U-Net, whose inference is safe to run from several threads.
"""

import argparse
import math
import os
import re
import tempfile
import threading
from pathlib import Path

import gradio as gr
import numpy as np
import PIL.Image
import PIL.ImageDraw
import PIL.ImageFont
import torch

from viewfusion_diffusers import ViewFusionPipeline, scheduler_from_name
from viewfusion_diffusers.cli_help import DefaultsHelpFormatter
from viewfusion_diffusers.constants import AZIMUTH_STEP_DEGREES, DEFAULT_PIPELINE, ELEVATION_DEGREES, NUM_VIEWS
from viewfusion_diffusers.image_processor import GRAYSCALE_MODES, ViewProcessor, grayscale_warning
from viewfusion_diffusers.images import weights_to_heatmap
from viewfusion_diffusers.orbit import sample_orbit, save_gif
from viewfusion_diffusers.preprocessing import (
    DEFAULT_SEGMENTATION_MODEL,
    has_plain_background,
    prepare_photo,
)


SAMPLERS = {"DDPM": "ddpm", "DPM-Solver SDE": "dpmsolver-sde", "DDIM": "ddim", "DPM-Solver": "dpmsolver"}
MAX_VIEWS = 12
MAX_FILE_BYTES = 20 * 2**20
MAX_SIDE = 4096
EXAMPLES_DIR = Path(__file__).resolve().parent.parent / "views"
# The example files are named `<object>_az<degrees>.png`.
EXAMPLE_NAME = re.compile(r"(?P<object>.+)_az(?P<azimuth>\d+)\.png")
EXAMPLE_VIEWS_PER_OBJECT = 3  # the example's target is the object's next view, which the inputs leave out
# The weight panel: each view and its heatmap drawn this many pixels a side, at most this many per row.
TILE_SIDE = 96
TILES_PER_ROW = 6
# The upload gallery's buttons sit at its top right: keep the thumbnails out of their way.
CSS = ".gradio-container {max-width: 1180px} #views .grid-container {padding-right: 52px}"
LEGEND_TITLE_HEIGHT = 24


def short_pipeline_name(pipeline_id: str) -> str:
    """What the page calls the pipeline: a folder's name (never the server's path to it), or the Hub repo id."""
    return Path(pipeline_id).name if os.path.isdir(pipeline_id) else pipeline_id


class Demo:
    """The shared pipeline and, loaded on first use, the background-removal model.

    Example:
        ```py
        >>> demo = Demo("pipelines/viewfusion-pybullet-64", DEFAULT_SEGMENTATION_MODEL)
        >>> build_demo(demo).launch()
        ```
    """

    def __init__(self, pipeline_id: str, segmentation_model: str):
        self.pipeline = ViewFusionPipeline.from_pretrained(pipeline_id)
        self.pipeline_name = short_pipeline_name(pipeline_id)
        self.posed = bool(self.pipeline.unet.config.get("relative_pose", False))
        self.segmentation_model = segmentation_model
        self._segmenter = None
        self._segmenter_lock = threading.Lock()

    def segmenter(self):
        with self._segmenter_lock:
            if self._segmenter is None:
                try:
                    from transformers import pipeline
                except ImportError as error:
                    raise gr.Error(
                        "Removing photo backgrounds needs transformers: pip install 'viewfusion-diffusers[demo]'. "
                        "Or upload views on a white or transparent background."
                    ) from error
                try:
                    self._segmenter = pipeline("image-segmentation", model=self.segmentation_model)
                except OSError as error:
                    raise gr.Error(
                        f"Could not load the background-removal model {self.segmentation_model} ({error}). Upload "
                        "views "
                        "on a white or transparent background, or untick 'Remove photo backgrounds'."
                    ) from error
            return self._segmenter

    def pipeline_for_request(self, sampler: str) -> ViewFusionPipeline:
        if sampler not in SAMPLERS:
            raise gr.Error(f"Unknown sampler {sampler!r}; choose one of {', '.join(SAMPLERS)}.")
        pipe = ViewFusionPipeline(
            unet=self.pipeline.unet, scheduler=scheduler_from_name(SAMPLERS[sampler], self.pipeline.scheduler.config)
        )
        pipe.set_progress_bar_config(disable=True)
        return pipe


def upload_paths(files) -> list[str]:
    """The local paths of the uploads: the gallery hands over `(path, caption)` pairs."""
    return [f[0] if isinstance(f, (tuple, list)) else f for f in (files or [])]


def read_views(files) -> list[PIL.Image.Image]:
    """Open the uploads, refusing what is not a usable image with a message that says what to do."""
    paths = upload_paths(files)
    if not paths:
        raise gr.Error("Upload at least one view of the object (or click an example).")
    if len(paths) > MAX_VIEWS:
        raise gr.Error(f"{len(paths)} views uploaded; use at most {MAX_VIEWS}.")
    views = []
    for path in paths:
        name = os.path.basename(path)
        if os.path.getsize(path) > MAX_FILE_BYTES:
            raise gr.Error(f"{name} is larger than 20 MB; upload a smaller image.")
        try:
            with PIL.Image.open(path) as image:
                if max(image.size) > MAX_SIDE:
                    raise gr.Error(
                        f"{name} is {image.width}x{image.height}; upload images of at most {MAX_SIDE} pixels a side."
                    )
                image.load()
                if image.mode in GRAYSCALE_MODES:
                    gr.Warning(grayscale_warning(name))
                views.append(image.copy())
        except (PIL.UnidentifiedImageError, OSError, SyntaxError):
            raise gr.Error(f"{name} is not an image or is damaged; upload PNG, JPEG or WebP files.") from None
    return views


def finite_number(value, name: str) -> float:
    """`value` as a float, or a message naming the setting when it is missing, not a number, or infinite."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise gr.Error(f"{name} must be a number, got {value!r}.") from None
    if not math.isfinite(number):
        raise gr.Error(f"{name} must be a finite number, got {value!r}.")
    return number


def whole_number(value, name: str, low: int, high: int) -> int:
    """`value` as an int in `[low, high]`, or a message naming the setting.

    `whole_number(50.0, "Steps", 1, 200) == 50`
    """
    number = finite_number(value, name)
    if number != int(number) or not low <= number <= high:
        raise gr.Error(f"{name} must be a whole number from {low} to {high}, got {value!r}.")
    return int(number)


def parse_view_azimuths(text: str | None, num_views: int, posed: bool) -> list[float] | None:
    """The azimuths typed for the uploaded views ("0, 90, 180"), or None when the box is empty (unposed)."""
    entries = [entry for entry in re.split(r"[,\s]+", (text or "").strip()) if entry]
    if not entries:
        return None
    if not posed:
        raise gr.Error(
            "This pipeline was trained without poses, so it cannot use the azimuths of your views: "
            "clear the 'Azimuths of your views' box (it places your views from the lighting itself)."
        )
    if len(entries) != num_views:
        raise gr.Error(
            f"{len(entries)} azimuths for {num_views} uploaded views; give one per view, in upload order, "
            "or leave the box empty."
        )
    return [finite_number(entry, f"Azimuth {i + 1} of your views") for i, entry in enumerate(entries)]


def label_font(size: int = 13) -> PIL.ImageFont.ImageFont:
    """Pillow's built-in font at `size` pixels (no font file needed), for the text drawn into the panels."""
    try:
        return PIL.ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has one bitmap size
        return PIL.ImageFont.load_default()


def weight_legend(height: int, bar_width: int = 14) -> PIL.Image.Image:
    """The heatmap colour bar, 1 (trusted) at the top to 0 at the bottom, with its ticks and a title.

    Example:
        ```py
        >>> weight_legend(96).size
        (54, 128)
        ```
    """
    font = label_font(12)
    ramp = np.broadcast_to(np.linspace(1, 0, height, dtype=np.float32)[None, None, :, None], (1, 3, height, bar_width))
    legend = PIL.Image.new("RGB", (bar_width + 40, height + LEGEND_TITLE_HEIGHT + 8), "white")
    legend.paste(PIL.Image.fromarray(weights_to_heatmap(ramp)[0]), (2, LEGEND_TITLE_HEIGHT))
    draw = PIL.ImageDraw.Draw(legend)
    draw.text((0, 0), "weight", fill="black", font=font)
    for value in (1.0, 0.5, 0.0):
        y = LEGEND_TITLE_HEIGHT + round((1 - value) * (height - 1))
        draw.line([(bar_width + 2, y), (bar_width + 6, y)], fill="black")
        draw.text((bar_width + 9, y), f"{value:.1f}", fill="black", font=font, anchor="lm")
    return legend


def weight_panel(views: list[PIL.Image.Image], weights: np.ndarray) -> PIL.Image.Image:
    """Each input view above the heatmap of the weight the model gave it, its mean written under it, and a colour bar.

    Example:
        ```py
        >>> panel = weight_panel(views, out.view_weights[0])  # out = pipe(views, 90.0)
        ```
    """
    heatmaps = weights_to_heatmap(weights)
    font = label_font()
    top, gap, caption_height = LEGEND_TITLE_HEIGHT, 10, 34  # `top` leaves room for the colour bar's title
    columns = min(len(views), TILES_PER_ROW)
    rows = math.ceil(len(views) / TILES_PER_ROW)
    tile_height = 2 * TILE_SIDE + caption_height
    legend = weight_legend(TILE_SIDE)
    panel = PIL.Image.new(
        "RGB", (gap + columns * (TILE_SIDE + gap) + legend.width, top + rows * (tile_height + gap)), "white"
    )
    draw = PIL.ImageDraw.Draw(panel)
    for i, (view, heatmap) in enumerate(zip(views, heatmaps)):
        x, y = gap + (i % TILES_PER_ROW) * (TILE_SIDE + gap), top + (i // TILES_PER_ROW) * (tile_height + gap)
        # Nearest-neighbour enlargement: the model's pixels stay visible as pixels.
        panel.paste(view.convert("RGB").resize((TILE_SIDE, TILE_SIDE), PIL.Image.NEAREST), (x, y))
        panel.paste(PIL.Image.fromarray(heatmap).resize((TILE_SIDE, TILE_SIDE), PIL.Image.NEAREST), (x, y + TILE_SIDE))
        draw.text((x + TILE_SIDE // 2, y + 2 * TILE_SIDE + 3), f"view {i + 1}", fill="black", font=font, anchor="ma")
        draw.text(
            (x + TILE_SIDE // 2, y + 2 * TILE_SIDE + 18),
            f"mean {weights[i].mean():.2f}",
            fill="black",
            font=font,
            anchor="ma",
        )
    # The colour bar beside the first row's heatmaps (its title sits above the bar).
    panel.paste(legend, (gap + columns * (TILE_SIDE + gap), top + TILE_SIDE - LEGEND_TITLE_HEIGHT))
    return panel


def example_objects() -> dict[str, list[Path]]:
    """The example views on disk, by object: `{object name: [its first views]}`."""
    objects = {}
    for path in sorted(EXAMPLES_DIR.glob("*.png")):
        match = EXAMPLE_NAME.fullmatch(path.name)
        if match:
            objects.setdefault(match["object"], []).append(path)
    return {name: paths[:EXAMPLE_VIEWS_PER_OBJECT] for name, paths in objects.items()}


def example_tile(paths: list[Path]) -> PIL.Image.Image:
    """An example object's views in a square, with a question mark where the view the demo then draws would be."""
    tile = PIL.Image.new("RGB", (132, 132), "white")
    for i, path in enumerate(paths[:3]):
        with PIL.Image.open(path) as view:
            tile.paste(view.convert("RGB").resize((64, 64)), ((i % 2) * 68, (i // 2) * 68))
    draw = PIL.ImageDraw.Draw(tile)
    draw.rectangle([68, 68, 131, 131], outline=(150, 150, 150))
    draw.text((100, 100), "?", fill=(120, 120, 120), font=label_font(32), anchor="mm")
    return tile


def gallery_columns(num_images: int) -> int:
    """Columns for the novel-view gallery, whose tiles are squares of at least 100 pixels: up to four samples
    side by side, an orbit's frames five to a row (scrolling)."""
    return 2 if num_images <= 2 else 4 if num_images <= 4 else 5


def build_demo(demo_state: Demo) -> gr.Blocks:
    resolution = demo_state.pipeline.unet.config.sample_size
    examples = example_objects()

    def use_example(evt: gr.SelectData):
        paths = examples[list(examples)[evt.index]]
        azimuths = [float(EXAMPLE_NAME.fullmatch(p.name)["azimuth"]) for p in paths]
        missing = max(azimuths) + (azimuths[1] - azimuths[0] if len(azimuths) > 1 else 180.0)
        typed = ", ".join(f"{a:g}" for a in azimuths) if demo_state.posed else ""
        return [str(p) for p in paths], typed, missing % 360

    def lay_out_results(full_orbit, num_samples):
        """Gallery columns to fit what came back, and the orbit panel shown only when there is an orbit."""
        count = NUM_VIEWS if full_orbit else int(num_samples)
        return gr.update(columns=gallery_columns(count)), gr.update(visible=bool(full_orbit))

    def generate(
        files,
        view_azimuths,
        azimuth,
        full_orbit,
        sampler,
        steps,
        seed,
        num_samples,
        remove_background,
        progress=gr.Progress(),
    ):
        azimuth = finite_number(azimuth, "Target azimuth")
        steps = whole_number(steps, "Denoising steps", 1, 1000)
        seed = whole_number(seed, "Seed", 0, 2**32 - 1)
        num_samples = whole_number(num_samples, "Samples", 1, 4)
        views = [ViewProcessor.composite_on_white(view) for view in read_views(files)]
        input_azimuths = parse_view_azimuths(view_azimuths, len(views), demo_state.posed)
        # The segmentation model is loaded only when some view has a background to remove.
        needs_segmenter = remove_background and not all(has_plain_background(view) for view in views)
        segmenter = demo_state.segmenter() if needs_segmenter else None
        views = [prepare_photo(view, resolution, segmenter) for view in views]
        pipe = demo_state.pipeline_for_request(sampler)
        if full_orbit:
            frames = sample_orbit(
                pipe,
                views,
                num_frames=NUM_VIEWS,
                num_inference_steps=steps,
                max_views=6,
                seed=seed,
                on_frame=lambda k: progress((k + 1) / NUM_VIEWS, desc=f"Orbit view {k + 1} / {NUM_VIEWS}"),
                input_azimuths=input_azimuths,
            )
            gif = Path(tempfile.mkdtemp(prefix="viewfusion-")) / "orbit.gif"
            save_gif(frames, gif, frame_ms=120, size=256)
            summary = (
                f"{NUM_VIEWS} views, azimuth 0 to {AZIMUTH_STEP_DEGREES * (NUM_VIEWS - 1):.0f} degrees, left to right."
            )
            return frames, None, summary, str(gif)

        def on_step(pipeline, i, t, tensors):
            progress((i + 1) / steps, desc="Denoising")
            return tensors

        try:
            out = pipe(
                views,
                azimuth,
                input_azimuths=input_azimuths,
                num_inference_steps=steps,
                num_images_per_prompt=num_samples,
                generator=[torch.Generator().manual_seed(seed + i) for i in range(num_samples)],
                callback_on_step_end=on_step,
            )
        except ValueError as error:  # the pipeline's own checks name the problem
            raise gr.Error(str(error)) from error
        frame = "your views' azimuths" if input_azimuths else "the training renders' frame"
        means = ", ".join(f"view {i + 1}: {w.mean():.2f}" for i, w in enumerate(out.view_weights[0]))
        summary = (
            f"{num_samples} sample{'s' if num_samples > 1 else ''} at azimuth {azimuth:g} degrees ({frame}). "
            f"Mean weights: {means}."
        )
        return out.images, weight_panel(views, out.view_weights[0]), summary, None

    pose_text = (
        "This pipeline also uses the azimuths of your views when you give them."
        if demo_state.posed
        else "This pipeline is pose-free: it works out where your views were taken from their content and lighting."
    )
    # Labels are Markdown lines above the images, not Gradio's block labels, which Gradio draws over the images.
    with gr.Blocks(title="ViewFusion: novel views of an object") as blocks:
        gr.Markdown(
            f"# ViewFusion novel views\nUpload 1 to {MAX_VIEWS} views of an object, pick an azimuth, and the model "
            "draws the "
            "object from there; the weight maps show how much it trusted each view, pixel by pixel. "
            f"{pose_text} Pipeline: `{demo_state.pipeline_name}`.",
            elem_id="header",
        )
        with gr.Row(equal_height=False):
            with gr.Column(scale=5):
                # Four thumbnails a row; a fifth view and more scroll inside the box, so the page keeps its layout.
                gr.Markdown("**Your views**: drop or click to upload images of the object (PNG, JPEG, WebP).")
                files = gr.Gallery(
                    label="Your views",
                    show_label=False,
                    interactive=True,
                    type="filepath",
                    file_types=["image"],
                    columns=4,
                    fit_columns=False,
                    height=150,
                    object_fit="contain",
                    allow_preview=False,
                    buttons=[],
                    elem_id="views",
                )
                if examples:
                    gr.Markdown("**Examples**: click one to upload three of its views; the fourth is the target.")
                    example_gallery = gr.Gallery(
                        [example_tile(paths) for paths in examples.values()],
                        show_label=False,
                        columns=4,
                        fit_columns=False,
                        height=140,
                        object_fit="contain",
                        allow_preview=False,
                        buttons=[],
                        interactive=False,
                        elem_id="examples",
                    )
                azimuth = gr.Slider(
                    0,
                    360 - AZIMUTH_STEP_DEGREES,
                    value=90,
                    step=AZIMUTH_STEP_DEGREES,
                    label="Target azimuth (degrees)",
                    info=f"Around the object, {ELEVATION_DEGREES:g} degrees up. Unposed: in the training renders' "
                    "frame (the light is fixed in it); posed: in the frame of your views' azimuths.",
                    elem_id="azimuth",
                )
                view_azimuths = gr.Textbox(
                    value="",
                    label="Azimuths of your views (degrees, comma-separated, optional)",
                    placeholder="e.g. 0, 90, 180",
                    info="One per view, in upload order (posed pipelines); leave empty when unknown.",
                    elem_id="view_azimuths",
                )
                with gr.Row():
                    full_orbit = gr.Checkbox(label=f"Full orbit ({NUM_VIEWS} views, slower)", value=False)
                    button = gr.Button("Generate", variant="primary", elem_id="generate")
                with gr.Accordion("Advanced", open=False):
                    sampler = gr.Dropdown(list(SAMPLERS), value="DDPM", label="Sampler")
                    steps = gr.Slider(1, 200, value=50, step=1, label="Denoising steps")
                    # No `precision`: Gradio would round an infinite seed before the check below could name it.
                    seed = gr.Number(value=0, label="Seed", info="A whole number; the same seed gives the same views.")
                    num_samples = gr.Slider(1, 4, value=1, step=1, label="Samples")
                    remove_background = gr.Checkbox(value=True, label="Remove photo backgrounds")
            with gr.Column(scale=6):
                gr.Markdown("**Novel view**")
                novel = gr.Gallery(
                    label="Novel views",
                    show_label=False,
                    format="png",
                    columns=2,
                    fit_columns=False,
                    height=310,
                    object_fit="contain",
                    allow_preview=False,
                    buttons=[],
                    interactive=False,
                    elem_id="novel",
                )
                summary = gr.Markdown(label="Summary", elem_id="summary")
                gr.Markdown(
                    "**Weights**: your views (top) and how much the model trusted each of their pixels (bottom)"
                )
                weights = gr.Image(
                    label="Weights",
                    show_label=False,
                    type="pil",
                    format="png",
                    height=270,
                    interactive=False,
                    buttons=[],
                    elem_id="weights",
                )
                orbit = gr.Image(
                    label="Orbit",
                    show_label=False,
                    type="filepath",
                    height=256,
                    visible=False,
                    interactive=False,
                    buttons=[],
                    elem_id="orbit",
                )
        if examples:
            example_gallery.select(use_example, None, [files, view_azimuths, azimuth], api_visibility="private")
        # The API returns plain values; the page's layout follows in a second, page-only step.
        button.click(
            generate,
            [files, view_azimuths, azimuth, full_orbit, sampler, steps, seed, num_samples, remove_background],
            [novel, weights, summary, orbit],
            api_name="generate",
        ).success(lay_out_results, [full_orbit, num_samples], [novel, orbit], api_visibility="private")
    return blocks


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=DefaultsHelpFormatter)
    parser.add_argument(
        "--pipeline",
        default=os.environ.get("VIEWFUSION_PIPELINE", DEFAULT_PIPELINE),
        help="Pipeline folder or Hub repo id (also $VIEWFUSION_PIPELINE).",
    )
    parser.add_argument(
        "--segmentation_model",
        default=os.environ.get("VIEWFUSION_SEGMENTATION_MODEL", DEFAULT_SEGMENTATION_MODEL),
        help="transformers image-segmentation model for removing photo backgrounds (also "
        "$VIEWFUSION_SEGMENTATION_MODEL).",
    )
    parser.add_argument(
        "--host", default=None, help="Address to listen on (default: $GRADIO_SERVER_NAME, else 127.0.0.1)."
    )
    parser.add_argument("--port", type=int, default=None, help="Port (default: $GRADIO_SERVER_PORT, else 7860).")
    args = parser.parse_args()
    try:
        demo_state = Demo(args.pipeline, args.segmentation_model)
    except (ValueError, OSError) as error:  # a damaged or missing pipeline: its one-line reason, not a traceback
        parser.error(str(error))
    blocks = build_demo(demo_state)
    # A bounded queue; two requests at a time suit a 2-core CPU Space (each uses the cores in turn).
    blocks.queue(max_size=16, default_concurrency_limit=2)
    # None leaves the address to Gradio, which reads GRADIO_SERVER_NAME / GRADIO_SERVER_PORT.
    blocks.launch(server_name=args.host, server_port=args.port, theme=gr.themes.Soft(), css=CSS)


if __name__ == "__main__":
    main()
