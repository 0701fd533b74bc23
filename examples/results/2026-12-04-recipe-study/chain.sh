#!/usr/bin/env bash
# The second recipe study, one process with one CPU thread beside the campaign: three variants of 20 CPU-minutes
# each from the campaign's state of 2026-12-04, then their held-out evaluations (6 test objects per N) and
# validation losses.
#   bash examples/results/2026-12-04-recipe-study/chain.sh [START]     (START defaults to training/state)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
study1=$root/examples/results/2026-12-02-recipe-study
export STUDY_DIR=${STUDY_DIR:-$root/data/study-1204}
mkdir -p "$STUDY_DIR/eval"
# A copy of the start: the campaign exports into training/state while this runs.
if [ ! -e "$STUDY_DIR/start/totals.json" ]; then
  cp -r "${1:-$root/training/state}" "$STUDY_DIR/start.partial" && mv "$STUDY_DIR/start.partial" "$STUDY_DIR/start"
fi
start=$STUDY_DIR/start
# The campaign's recipe, continued from the state's weights and EMA, a checkpoint every 50 steps for the curves.
common=(--pretrained_model_name_or_path "$start" --ema_from "$start/unet_ema" --category_repeats random_urdfs=4)
export CHECKPOINTING_STEPS=50
train() { [ -e "$STUDY_DIR/$1/DONE" ] || bash "$study1/train_variant.sh" "$@" "${common[@]}"; }
train base
train snr5 --snr_gamma 5
train ema0.995 --ema_max_decay 0.995
export NUM_OBJECTS=${NUM_OBJECTS:-6}
for name in base snr5 ema0.995; do bash "$study1/eval_variant.sh" "$name"; done
cd "$STUDY_DIR"
OMP_NUM_THREADS=1 nice -n 10 python "$root/training/validation_loss.py" --data_dir "$root/data/pybullet-64" \
  --models start base snr5 ema0.995 --output_json val_loss.json > val_loss.log 2>&1
OMP_NUM_THREADS=1 nice -n 10 python "$root/training/validation_loss.py" --data_dir "$root/data/pybullet-64" \
  --models */checkpoint-*/unet_ema --scheduler_from start --output_json val_loss_curves.json > val_loss_curves.log 2>&1
touch "$STUDY_DIR/DONE"
