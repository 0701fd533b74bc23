"""ViewFusion demo: novel views of an object from any number of unposed views.

    python examples/gradio_space/app.py [--pipeline FOLDER_OR_REPO_ID] [--port 7860]

The pipeline comes from `--pipeline`, else `$VIEWFUSION_PIPELINE`, else the one shipped in `pipelines/`.
It is loaded once; each request gets its own scheduler (schedulers keep per-run state) and shares the U-Net,
whose inference is safe to run from several threads.
"""

import argparse
import os
import tempfile
import threading
from pathlib import Path

import gradio as gr
import numpy as np
import PIL.Image
import torch

from viewfusion_diffusers import ViewFusionPipeline, scheduler_from_name
from viewfusion_diffusers.cli import DEFAULT_PIPELINE
from viewfusion_diffusers.images import weights_to_heatmap
from viewfusion_diffusers.orbit import sample_orbit, save_gif
from viewfusion_diffusers.preprocessing import (
    DEFAULT_SEGMENTATION_MODEL,
    composite_on_white,
    has_plain_background,
    prepare_photo,
)

SAMPLERS = {"DDPM": "ddpm", "DPM-Solver SDE": "dpmsolver-sde", "DDIM": "ddim", "DPM-Solver": "dpmsolver"}
MAX_VIEWS = 12
MAX_FILE_BYTES = 20 * 2**20
MAX_SIDE = 4096
EXAMPLES_DIR = Path(__file__).resolve().parent.parent / "views"


class Demo:
    """The shared pipeline and, loaded on first use, the background-removal model."""

    def __init__(self, pipeline_id: str, segmentation_model: str):
        self.pipeline = ViewFusionPipeline.from_pretrained(pipeline_id)
        self.pipeline_id = pipeline_id
        self.segmentation_model = segmentation_model
        self._segmenter = None
        self._segmenter_lock = threading.Lock()

    def segmenter(self):
        with self._segmenter_lock:
            if self._segmenter is None:
                from transformers import pipeline

                try:
                    self._segmenter = pipeline("image-segmentation", model=self.segmentation_model)
                except OSError as error:
                    raise gr.Error(
                        f"Could not load the background-removal model {self.segmentation_model} ({error}). Upload views "
                        "on a white or transparent background, or untick 'Remove photo backgrounds'."
                    ) from error
            return self._segmenter

    def pipeline_for_request(self, sampler: str) -> ViewFusionPipeline:
        pipe = ViewFusionPipeline(unet=self.pipeline.unet, scheduler=scheduler_from_name(SAMPLERS[sampler], self.pipeline.scheduler.config))
        pipe.set_progress_bar_config(disable=True)
        return pipe


def read_views(files) -> list[PIL.Image.Image]:
    """Open the uploads, refusing what is not a usable image with a message that says what to do."""
    paths = [f if isinstance(f, str) else getattr(f, "name", None) or f["path"] for f in (files or [])]
    if not paths:
        raise gr.Error("Upload at least one view of the object (or click an example below).")
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
                    raise gr.Error(f"{name} is {image.width}x{image.height}; upload images of at most {MAX_SIDE} pixels a side.")
                image.load()
                views.append(image.copy())
        except (PIL.UnidentifiedImageError, OSError, SyntaxError):
            raise gr.Error(f"{name} is not an image or is damaged; upload PNG, JPEG or WebP files.") from None
    return views


def weight_gallery(views: list[PIL.Image.Image], weights: np.ndarray) -> list[tuple[PIL.Image.Image, str]]:
    """Each input view above the heatmap of the weight the model gave it (bright: trusted)."""
    heatmaps = weights_to_heatmap(weights)
    items = []
    for i, (view, heatmap) in enumerate(zip(views, heatmaps)):
        stacked = np.concatenate([np.asarray(view.convert("RGB")), heatmap], axis=0)
        items.append((PIL.Image.fromarray(stacked), f"view {i + 1}: mean weight {weights[i].mean():.2f}"))
    return items


def build_demo(demo_state: Demo) -> gr.Blocks:
    resolution = demo_state.pipeline.unet.config.sample_size

    def generate(files, azimuth, full_orbit, sampler, steps, seed, num_samples, remove_background, progress=gr.Progress()):
        views = [composite_on_white(view) for view in read_views(files)]
        # The segmentation model is loaded only when some view has a background to remove.
        needs_segmenter = remove_background and not all(has_plain_background(view) for view in views)
        segmenter = demo_state.segmenter() if needs_segmenter else None
        views = [prepare_photo(view, resolution, segmenter) for view in views]
        pipe = demo_state.pipeline_for_request(sampler)
        steps, seed, num_samples = int(steps), int(seed), int(num_samples)
        if full_orbit:
            frames = sample_orbit(pipe, views, num_frames=24, num_inference_steps=steps, max_views=6, seed=seed,
                                  on_frame=lambda k: progress((k + 1) / 24, desc=f"Orbit view {k + 1} / 24"))
            gif = Path(tempfile.mkdtemp(prefix="viewfusion-")) / "orbit.gif"
            save_gif(frames, gif, frame_ms=120, size=256)
            return [(frame, f"{15 * k} deg") for k, frame in enumerate(frames)], [], str(gif)

        def on_step(pipeline, i, t, tensors):
            progress((i + 1) / steps, desc="Denoising")
            return tensors

        out = pipe(views, float(azimuth), num_inference_steps=steps, num_images_per_prompt=num_samples,
                   generator=[torch.Generator().manual_seed(seed + i) for i in range(num_samples)],
                   callback_on_step_end=on_step)
        novel = [(image, f"sample {i + 1}, {azimuth:.0f} deg") for i, image in enumerate(out.images)]
        return novel, weight_gallery(views, out.view_weights[0]), None

    with gr.Blocks(title="ViewFusion: novel views from unposed views") as blocks:
        gr.Markdown(
            "# ViewFusion\nUpload 1 to 12 views of an object (no poses needed), pick an azimuth, and the model draws the "
            "object from there. The heatmaps show how much the model trusted each input view, pixel by pixel. "
            f"Pipeline: `{demo_state.pipeline_id}`."
        )
        with gr.Row():
            with gr.Column():
                files = gr.File(label="Input views", file_count="multiple", file_types=["image"], elem_id="views")
                azimuth = gr.Slider(0, 345, value=90, step=15, label="Target azimuth (degrees)", elem_id="azimuth")
                full_orbit = gr.Checkbox(label="Full orbit (24 views, slower)", value=False)
                with gr.Accordion("Advanced", open=False):
                    sampler = gr.Dropdown(list(SAMPLERS), value="DDPM", label="Sampler")
                    steps = gr.Slider(1, 200, value=50, step=1, label="Denoising steps")
                    seed = gr.Number(value=0, precision=0, label="Seed")
                    num_samples = gr.Slider(1, 4, value=1, step=1, label="Samples")
                    remove_background = gr.Checkbox(value=True, label="Remove photo backgrounds")
                button = gr.Button("Generate", variant="primary", elem_id="generate")
            with gr.Column():
                novel = gr.Gallery(label="Novel view(s)", columns=2, height=300, object_fit="contain", elem_id="novel")
                weights = gr.Gallery(label="Input views and their weights", columns=6, height=200, object_fit="contain")
                orbit = gr.Image(label="Orbit", type="filepath")
        example_objects = sorted({p.name.split("_")[0] for p in EXAMPLES_DIR.glob("*.png")})
        if example_objects:
            gr.Examples([[sorted(str(p) for p in EXAMPLES_DIR.glob(f"{name}_*.png"))[:3]] for name in example_objects], inputs=[files])
        button.click(generate, [files, azimuth, full_orbit, sampler, steps, seed, num_samples, remove_background],
                     [novel, weights, orbit], api_name="generate")
    return blocks


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pipeline", default=os.environ.get("VIEWFUSION_PIPELINE", DEFAULT_PIPELINE))
    parser.add_argument("--segmentation_model", default=os.environ.get("VIEWFUSION_SEGMENTATION_MODEL", DEFAULT_SEGMENTATION_MODEL))
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", 7860)))
    args = parser.parse_args()
    blocks = build_demo(Demo(args.pipeline, args.segmentation_model))
    # A bounded queue; two requests at a time suit a 2-core CPU Space (each uses the cores in turn).
    blocks.queue(max_size=16, default_concurrency_limit=2)
    blocks.launch(server_name=args.host, server_port=args.port, theme=gr.themes.Soft(), css=".gradio-container {max-width: 1100px}")


if __name__ == "__main__":
    main()
