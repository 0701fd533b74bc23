#!/usr/bin/env bash
# The third recipe study, one process with one CPU thread beside the campaign: the campaign's recipe (base) and three
# variants of it, 20 CPU-minutes each from the campaign's state of 2026-12-04, their held-out evaluations (8 test
# objects per N), then the validation losses. bf16, the question that could change the campaign most, comes first.
#   bash examples/results/2026-12-07-recipe-study/chain.sh [START]     (START defaults to training/state)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
study1=$root/examples/results/2026-12-02-recipe-study
export STUDY_DIR=${STUDY_DIR:-$root/data/study-1207}
mkdir -p "$STUDY_DIR/eval"
# A copy of the start: the campaign exports into training/state while this runs.
if [ ! -e "$STUDY_DIR/start/totals.json" ]; then
  cp -r "${1:-$root/training/state}" "$STUDY_DIR/start.partial" && mv "$STUDY_DIR/start.partial" "$STUDY_DIR/start"
fi
start=$STUDY_DIR/start
# The campaign's recipe (min-SNR-gamma 5 included), continued from the state's weights and EMA, a checkpoint
# every 50 steps for the curves.
common=(--pretrained_model_name_or_path "$start" --ema_from "$start/unet_ema" --category_repeats random_urdfs=4
  --snr_gamma 5)
export CHECKPOINTING_STEPS=50
train() { [ -e "$STUDY_DIR/$1/DONE" ] || bash "$study1/train_variant.sh" "$@" "${common[@]}"; }
export NUM_OBJECTS=${NUM_OBJECTS:-8}
evaluate() { bash "$study1/eval_variant.sh" "$1"; }
train base
# bf16 autocast (the weights, the optimizer and the EMA stay fp32): this CPU has AMX bf16 units, and
# examples/benchmark_training.py measures 2.4x the samples per second of fp32 on one thread.
train bf16 --mixed_precision bf16
evaluate base
evaluate bf16
# 1-3 input views a sample instead of 1-6: 2 U-Net passes a sample on average instead of 3.5.
train views3 --max_views 3
# The EMA's averaging horizon capped at about 100 steps (the campaign's warm-up decay is about 0.997 by now).
train ema0.99 --ema_max_decay 0.99
evaluate views3
evaluate ema0.99
cd "$STUDY_DIR"
OMP_NUM_THREADS=1 nice -n 10 python "$root/training/validation_loss.py" --data_dir "$root/data/pybullet-64" \
  --models start base bf16 views3 ema0.99 --output_json val_loss.json > val_loss.log 2>&1
OMP_NUM_THREADS=1 nice -n 10 python "$root/training/validation_loss.py" --data_dir "$root/data/pybullet-64" \
  --models */checkpoint-*/unet_ema --scheduler_from start --output_json val_loss_curves.json > val_loss_curves.log 2>&1
touch "$STUDY_DIR/DONE"
