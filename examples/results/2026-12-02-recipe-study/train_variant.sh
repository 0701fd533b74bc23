#!/usr/bin/env bash
# One variant of the recipe study: one CPU thread, the same CPU-time budget, seed and data for every variant.
#   bash train_variant.sh NAME [extra train_viewfusion.py flags...]
# Fine-tunes start from the shipped pipeline unless the flags give --model_config (a from-scratch run).
set -euo pipefail
name=$1; shift
root=$(cd "$(dirname "$0")/../../.." && pwd)
out=${STUDY_DIR:-$root/data/study}/$name
start=(--pretrained_model_name_or_path "$root/pipelines/viewfusion-pybullet-64")
case " $* " in *" --model_config "*) start=(--relative_pose) ;; esac
mkdir -p "$out"
OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 nice -n 10 python "$root/training/train_viewfusion.py" \
  --data_dir "$root/data/pybullet-64" --output_dir "$out" "${start[@]}" \
  --max_train_cpu_minutes "${CPU_MINUTES:-20}" --max_train_steps 1000000 --seed 0 \
  --learning_rate 2e-4 --lr_warmup_steps 50 --train_batch_size 8 --max_views 6 --pose_dropout 0.5 --use_ema \
  --checkpointing_steps "${CHECKPOINTING_STEPS:-100}" --validation_steps 0 --logging_steps 10 "$@" \
  > "$out/train.log" 2>&1
touch "$out/DONE"
