#!/usr/bin/env bash
# Stage 3: parser-free warp (the student) distilled from the teacher, 100+100 epochs.
#   NGPU=4 DATAROOT=dataset/VITON_traindata bash scripts/train_pf_warp.sh [--resume] [--precision bf16] ...
set -euo pipefail
RUNS=${RUNS:-checkpoints}
exec bash "$(dirname "$0")/launch.sh" pf_warp --pb_checkpoint "$RUNS/pb_gen/final.pth" "$@"
