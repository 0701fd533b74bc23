#!/usr/bin/env bash
# Continue training the default model for HOURS, from the newest state in the repository, then write the new state.
#
#   training/continue_default.sh HOURS [RUN_DIR [train_viewfusion.py flags]]   # e.g. ... 3 runs/campaign
#
# On a fresh machine after the README's install ("[all]" extras): renders data/pybullet-64 if it is missing
# (resumable), starts from training/state (the weights, the EMA and the lineage's totals; a fresh optimizer with a
# short warm-up), trains the recipe chosen by the equal-CPU-time study (examples/results/2026-12-02-recipe-study) on
# pybullet plus the procedural categories, both modes, under `nice`, checkpointing every CHECKPOINTING_STEPS steps,
# and stops by itself when HOURS are up. Then it writes the newest checkpoint and the updated totals back into
# training/state, ready to commit:
#
#   git add training/state && git commit -m "Campaign state after N samples"
#
# While it runs, `python training/campaign_state.py export RUN_DIR training/state` writes the newest checkpoint
# as the state at any moment (exporting again later counts nothing twice). Started again with the same RUN_DIR
# in the same session, it resumes from the run's newest checkpoint. Environment: THREADS (torch threads, default
# 1, so the machine stays usable), DATA_DIR, STATE_DIR, CHECKPOINTING_STEPS, RENDER=0 (use DATA_DIR as it is).
# Flags after RUN_DIR go to train_viewfusion.py after the recipe's, so they override it.
set -euo pipefail
if [ $# -lt 1 ]; then
  sed -n '2,4p' "$0" >&2
  exit 2
fi
hours=$1
shift
root=$(cd "$(dirname "$0")/.." && pwd)
run=${1:-$root/runs/campaign}
shift || true
run=$(realpath -m "$run")
data=${DATA_DIR:-$root/data/pybullet-64}
state=${STATE_DIR:-$root/training/state}
threads=${THREADS:-1}
minutes=$(python -c "import sys; m = float(sys.argv[1]) * 60; assert m > 0, 'HOURS must be positive'; print(m)" "$hours")
cd "$root"
export PYTHONPATH=$root${PYTHONPATH:+:$PYTHONPATH}
# With the kernel's autogroups, `nice` ranks a process only within its session's group; lowering the group too keeps
# the campaign behind other sessions' work (start it with `setsid` so that only its own session is lowered).
if [ -w /proc/self/autogroup ] && [ "$(ps -o sid= $$ | tr -d ' ')" = "$$" ]; then echo 10 > /proc/self/autogroup; fi

# 1. data: every source the recipe trains on (a no-op when the renders are there)
if [ "${RENDER:-1}" != 0 ] && { [ ! -s "$data/random_urdfs/train.lst" ] || [ ! -s "$data/watercraft/train.lst" ]; }; then
  echo "Rendering $data (pybullet objects and the 13 procedural categories; resumable)"
  viewfusion render --output_dir "$data" --source all
fi

# 2. the start: the state as it was when this run began (a later export does not move a restarted run's start)
if [ ! -e "$state/totals.json" ]; then
  echo "No campaign state in $state: start a lineage with training/campaign_state.py init (see its --help)." >&2
  exit 1
fi
mkdir -p "$run"
if [ ! -e "$run/start/totals.json" ]; then
  rm -rf "$run/start.partial" && cp -r "$state" "$run/start.partial" && mv "$run/start.partial" "$run/start"
fi
python training/campaign_state.py begin "$run/start" "$run" > /dev/null
# A new seed for each run of the lineage: its batches, noise and pose dropout differ from every earlier run's.
seed=$(python -c "import json, sys; print(len(json.load(open(sys.argv[1]))['runs']))" "$run/start/totals.json")

# 3. the recipe (the study's winner; see examples/results/2026-12-02-recipe-study), with the pybullet objects
# visited 4 times an epoch: about half of each batch instead of a fifth, which had made the lineage worse on
# pybullet while it got better on the categories (examples/results/lineage); and min-SNR-gamma 5, better than the
# plain loss in three columns of the two studies together and worse in none (examples/results/2026-12-04-recipe-study);
# and bf16 autocast where the machine has bf16 units (a GPU, or a CPU with AMX or AVX-512 bf16): 2.1 times the
# samples per CPU-second of fp32 on one core with AMX, at no measured cost in quality
# (examples/results/2026-12-07-recipe-study); elsewhere bf16 is emulated and slower, so fp32.
precision=$(python -c "from viewfusion_diffusers.training_utils import bf16_is_fast; print('bf16' if bf16_is_fast() else 'no')")
recipe=(--learning_rate 2e-4 --lr_warmup_steps 50 --train_batch_size 8 --max_views 6 --pose_dropout 0.5 --use_ema
  --category_repeats random_urdfs=4 --snr_gamma 5 --mixed_precision "$precision")
echo "train_viewfusion.py ${recipe[*]} --seed $seed $*, data $data" > "$run/recipe.txt"
OMP_NUM_THREADS=$threads MKL_NUM_THREADS=$threads nice -n 10 python training/train_viewfusion.py \
  --data_dir "$data" --output_dir "$run" --pretrained_model_name_or_path "$run/start" --ema_from "$run/start/unet_ema" \
  "${recipe[@]}" --seed "$seed" --max_train_minutes "$minutes" --max_train_steps 100000000 \
  --checkpointing_steps "${CHECKPOINTING_STEPS:-200}" --checkpoints_total_limit 2 --validation_steps 0 \
  --logging_steps 25 --resume_from_checkpoint latest --report_to tensorboard "$@"

# 4. the new state, with the lineage's totals
python training/campaign_state.py export "$run" "$state"
echo "New state in $state; commit it with: git add training/state"
