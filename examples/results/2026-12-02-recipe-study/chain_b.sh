#!/usr/bin/env bash
cd "$(dirname "$0")"
s=/work/wt-study/data/study
while [ ! -e $s/snr5/DONE ]; do sleep 30; done
bash eval_variant.sh snr5
bash train_variant.sh pd0 --pose_dropout 0
bash eval_variant.sh pd0
bash train_variant.sh bs16 --train_batch_size 16
bash eval_variant.sh bs16
