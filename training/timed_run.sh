#!/usr/bin/env bash
# Training on a time budget of N minutes: install the given wheels, benchmark briefly, train until the time is
# up, and leave the final fp16 pipeline and the benchmark tables in one folder.
#
#   training/timed_run.sh MINUTES OUTPUT_DIR [extra train_viewfusion.py arguments...]
#
# Run from the repository root, on a machine with torch, accelerate, transformers and huggingface_hub. Given
# (paths set by the environment variables below):
#   WHEELS        a folder of wheels installed offline with --no-deps when diffusers is missing (default data/wheels)
#   DATA_TARBALL  the rendered dataset as an xz tarball of its folder (default data/pybullet-64.tar.xz), or
#   DATA_DIR      an unpacked dataset (skips the tarball)
#   PRETRAINED    start from this pipeline folder (default: none, a new U-Net of MODEL_CONFIG)
#   MODEL_CONFIG  a U-Net preset or config.json (default paper)   RESOLUTION (default 64)
#   BATCH_SIZE    samples per step (default 64)                     BENCH_STEPS  timed benchmark steps (default 10)
#   RESERVE_MINUTES  kept back for the final checkpoint and export (default 1)
# OUTPUT_DIR ends with: model/ (checkpoints, the fp32 pipeline, logs), pipeline-fp16/ (the shipped form),
# benchmark_training.{md,json}, benchmark_sampling.{md,json}, train.log. Checkpoints are written every
# CHECKPOINTING_STEPS (default 500) steps, so a run cut short still leaves a resumable one.
set -euo pipefail

if [ $# -lt 2 ]; then
    echo "usage: training/timed_run.sh MINUTES OUTPUT_DIR [extra train_viewfusion.py arguments...]" >&2
    exit 2
fi
MINUTES=$1
OUT=$2
shift 2
START=$(date +%s)
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

WHEELS=${WHEELS:-data/wheels}
DATA_TARBALL=${DATA_TARBALL:-data/pybullet-64.tar.xz}
MODEL_CONFIG=${MODEL_CONFIG:-paper}
RESOLUTION=${RESOLUTION:-64}
BATCH_SIZE=${BATCH_SIZE:-64}
BENCH_STEPS=${BENCH_STEPS:-10}
RESERVE_MINUTES=${RESERVE_MINUTES:-1}
CHECKPOINTING_STEPS=${CHECKPOINTING_STEPS:-500}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export HF_HUB_OFFLINE=1

minutes_left() {
    python -c "import sys; print(max(0.0, $MINUTES - ($(date +%s) - $START) / 60 - $RESERVE_MINUTES))"
}

# 1. packages, offline
if ! python -c "import diffusers" 2>/dev/null; then
    ls "$WHEELS"/*.whl >/dev/null 2>&1 || { echo "diffusers is missing and $WHEELS holds no wheels" >&2; exit 1; }
    python -m pip install --no-index --no-deps --quiet "$WHEELS"/*.whl
fi

# 2. data
if [ -z "${DATA_DIR:-}" ]; then
    [ -f "$DATA_TARBALL" ] || { echo "no dataset: set DATA_DIR, or DATA_TARBALL to an xz tarball ($DATA_TARBALL is missing)" >&2; exit 1; }
    mkdir -p "$OUT/data"
    tar -xJf "$DATA_TARBALL" -C "$OUT/data"
    DATA_DIR=$(dirname "$(find "$OUT/data" -name metadata.yaml -print -quit)")
fi

if python -c "import torch, sys; sys.exit(not torch.cuda.is_available())"; then
    PLACEMENT=(--num_processes 1 --num_machines 1 --dynamo_backend no --mixed_precision bf16)
    DTYPE=bf16
else  # a CPU-only machine
    PLACEMENT=(--cpu --num_processes 1 --num_machines 1 --dynamo_backend no --mixed_precision no)
    DTYPE=fp32
fi
PRESET_ARGS=(--model_config "$MODEL_CONFIG")
BENCH_PRESET=$MODEL_CONFIG
if [ -n "${PRETRAINED:-}" ]; then
    PRESET_ARGS=(--pretrained_model_name_or_path "$PRETRAINED")
fi
case "$BENCH_PRESET" in small|paper) ;; *) BENCH_PRESET=small ;; esac

# 3. benchmarks, briefly (a failure here does not cost the training)
python examples/benchmark_training.py --data_dir "$DATA_DIR" --presets "$BENCH_PRESET" --resolution "$RESOLUTION" \
    --batch_size "$BATCH_SIZE" --dtype "$DTYPE" --steps "$BENCH_STEPS" --warmup 2 \
    --output "$OUT/benchmark_training.json" > "$OUT/benchmark_training.md" 2>> "$OUT/benchmarks.log" \
    || echo "training benchmark failed: see $OUT/benchmarks.log" >&2
python examples/benchmark_sampling.py --models "$BENCH_PRESET" --num_views 6 --samplers ddpm:${SAMPLING_STEPS:-50} \
    --variants "objects:${SAMPLING_OBJECTS:-64}" --reference_steps 2 --repeats 3 --dtype "$DTYPE" \
    --output "$OUT/benchmark_sampling.json" > "$OUT/benchmark_sampling.md" 2>> "$OUT/benchmarks.log" \
    || echo "sampling benchmark failed: see $OUT/benchmarks.log" >&2

# 4. train until the time budget (less the reserve) is spent
TRAIN_MINUTES=$(minutes_left)
if python -c "import sys; sys.exit($TRAIN_MINUTES > 0)"; then
    TRAIN_MINUTES=0.05  # the benchmarks took the time: still leave a model behind
fi
REPORT=none
python -c "import tensorboard" 2>/dev/null && REPORT=tensorboard
echo "training for $TRAIN_MINUTES minutes" >&2
python -m accelerate.commands.launch "${PLACEMENT[@]}" training/train_viewfusion.py \
    --data_dir "$DATA_DIR" --output_dir "$OUT/model" "${PRESET_ARGS[@]}" --resolution "$RESOLUTION" \
    --train_batch_size "$BATCH_SIZE" --max_train_minutes "$TRAIN_MINUTES" --max_train_steps 1000000 \
    --checkpointing_steps "$CHECKPOINTING_STEPS" --checkpoints_total_limit 2 --report_to "$REPORT" \
    --resume_from_checkpoint latest "$@" 2> "$OUT/train.log"

# 5. the shipped form: fp16 weights and a card with the benchmark tables
{
    echo "## Training"
    echo
    echo "Trained by \`training/timed_run.sh $MINUTES\` with \`training/train_viewfusion.py\`; its arguments are in \`model/README.md\`."
    for table in benchmark_training benchmark_sampling; do
        if [ -s "$OUT/$table.md" ]; then echo; echo "### $table"; echo; cat "$OUT/$table.md"; fi
    done
} > "$OUT/card.md"
python training/ship_pipeline.py --pipeline "$OUT/model" --card_body "$OUT/card.md" --output_dir "$OUT/pipeline-fp16" \
    --title "ViewFusion, trained for ${MINUTES} minutes"
echo "done in $(( $(date +%s) - START )) s: $OUT/pipeline-fp16" >&2
