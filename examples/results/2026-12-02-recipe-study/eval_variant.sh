#!/usr/bin/env bash
# The study's held-out evaluation of one pipeline: 12 test objects per N of pybullet and of the categories,
# N = 1 / 3 / 6, posed and unposed, DDPM 50, the same samples and noise for every variant; one CPU thread.
#   bash eval_variant.sh NAME [PIPELINE]      (PIPELINE defaults to the study's run NAME, waited for)
set -euo pipefail
name=$1
root=$(cd "$(dirname "$0")/../../.." && pwd)
study=${STUDY_DIR:-$root/data/study}
pipeline=${2:-$study/$name}
[ $# -ge 2 ] || while [ ! -e "$pipeline/DONE" ]; do sleep 30; done
declare -A categories=(
  [pybullet]="named random_urdfs"
  [categories]="airplane bench cabinet car chair display lamp loudspeaker rifle sofa table telephone watercraft"
)
for dataset in pybullet categories; do
  out=$study/eval/$name-$dataset
  [ -e "$out/results.json" ] && continue
  # shellcheck disable=SC2086
  OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 nice -n 10 viewfusion eval --pipeline "$pipeline" --data_dir "$root/data/pybullet-64" \
    --categories ${categories[$dataset]} --num_views 1 3 6 --num_objects ${NUM_OBJECTS:-12} --posed \
    --methods viewfusion viewfusion_posed --batch_size 12 --output_dir "$out" > "$study/eval/$name-$dataset.log" 2>&1
done
