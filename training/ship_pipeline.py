"""Turn a trained pipeline folder into the small Hub folder that is shipped and pushed: fp16 weights, a model card.

    python training/ship_pipeline.py --pipeline runs/small-v --card_body card.md \
        --images eval/small-v/grid_3_views.png --output_dir pipelines/viewfusion-pybullet-64

The U-Net is stored in fp16 (half the size; `from_pretrained` loads it back as fp32 on the CPU) and the whole
folder is written next to the old one, then swapped in, so a failed run leaves the old folder untouched.
"""

import argparse
import shutil
from pathlib import Path

import torch

from viewfusion_diffusers import ViewFusionPipeline
from viewfusion_diffusers.hub_utils import make_model_card, save_pipeline_atomically


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--pipeline", required=True, help="The trained pipeline folder (e.g. a training --output_dir)."
    )
    parser.add_argument("--card_body", required=True, help="Markdown for the model card, below its metadata header.")
    parser.add_argument("--title", default="ViewFusion on pybullet objects, 64x64")
    parser.add_argument(
        "--repo_id", default="viewfusion-diffusers/viewfusion-pybullet-64", help="Shown in the card's snippet."
    )
    parser.add_argument("--images", nargs="*", default=[], help="Pictures the card refers to, copied into the folder.")
    parser.add_argument("--output_dir", required=True)
    args = parser.parse_args(argv)

    pipeline = ViewFusionPipeline.from_pretrained(args.pipeline)
    # The configs name the folder by its Hub id, not by the local path it was trained in.
    pipeline.register_to_config(_name_or_path=args.repo_id)
    pipeline.unet.register_to_config(_name_or_path=args.repo_id)
    pipeline.unet.to(torch.float16)
    card = make_model_card(args.title, Path(args.card_body).read_text(), repo_id=args.repo_id)
    staging = Path(args.output_dir).with_name(f".tmp-ship-{Path(args.output_dir).name}")
    shutil.rmtree(staging, ignore_errors=True)
    save_pipeline_atomically(pipeline, staging, model_card=card)
    for image in args.images:
        shutil.copy(image, staging / Path(image).name)
    old = Path(args.output_dir).with_name(f".old-{Path(args.output_dir).name}")
    if Path(args.output_dir).exists():
        Path(args.output_dir).rename(old)
    staging.rename(args.output_dir)
    shutil.rmtree(old, ignore_errors=True)
    size = sum(p.stat().st_size for p in Path(args.output_dir).rglob("*") if p.is_file())
    print(f"Wrote {args.output_dir} ({size / 2**20:.1f} MB)")


if __name__ == "__main__":
    main()
