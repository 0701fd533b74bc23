"""The pipeline of a run's last checkpoint with its raw (not EMA) weights, for scoring EMA against no EMA.

python raw_weights_pipeline.py RUN_DIR OUTPUT_DIR
"""

import sys
from pathlib import Path

from viewfusion_diffusers import ViewFusionPipeline, ViewFusionUNet2DModel
from viewfusion_diffusers.hub_utils import make_model_card, save_pipeline_atomically


run, output = sys.argv[1], sys.argv[2]
checkpoint = max(Path(run).glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
pipeline = ViewFusionPipeline(
    unet=ViewFusionUNet2DModel.from_pretrained(checkpoint, subfolder="unet"),
    scheduler=ViewFusionPipeline.from_pretrained(run).scheduler,
)
save_pipeline_atomically(pipeline, output, make_model_card("ViewFusion pipeline", f"Raw weights of {checkpoint}.\n"))
print(f"{checkpoint} -> {output}")
