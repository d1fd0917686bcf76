#!/usr/bin/env bash
# Stage 4: parser-free warp + generator end to end (the student), 50+50 epochs.
#   NGPU=4 DATAROOT=dataset/VITON_traindata bash scripts/train_pf_gen.sh [--resume] [--precision bf16] ...
set -euo pipefail
RUNS=${RUNS:-checkpoints}
exec bash "$(dirname "$0")/launch.sh" pf_gen --pb_checkpoint "$RUNS/pb_gen/final.pth" --pf_warp_checkpoint "$RUNS/pf_warp/final.pth" "$@"
