#!/usr/bin/env bash
# Stage 1: parser-based warp (the teacher's warp), paper schedule 50+50 epochs at lr 5e-5.
#   NGPU=4 DATAROOT=dataset/VITON_traindata bash scripts/train_pb_warp.sh [--resume] [--precision bf16] ...
set -euo pipefail
RUNS=${RUNS:-checkpoints}
exec bash "$(dirname "$0")/launch.sh" pb_warp  "$@"
