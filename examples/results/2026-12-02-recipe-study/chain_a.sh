#!/usr/bin/env bash
# The study's jobs, two chains side by side (chain_a.sh, chain_b.sh), each one process with one CPU thread;
# base and snr5 ran first, side by side (bash train_variant.sh base; bash train_variant.sh snr5 --snr_gamma 5).
cd "$(dirname "$0")"
s=/work/wt-study/data/study
while [ ! -e $s/base/DONE ]; do sleep 30; done
bash eval_variant.sh shipped /work/wt-study/pipelines/viewfusion-pybullet-64
bash eval_variant.sh base
bash train_variant.sh lr6e-4 --learning_rate 6e-4
bash eval_variant.sh lr6e-4
OMP_NUM_THREADS=1 nice -n 10 python raw_weights_pipeline.py $s/base $s/base-raw && touch $s/base-raw/DONE
bash eval_variant.sh base-raw
