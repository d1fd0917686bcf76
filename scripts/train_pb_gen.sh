#!/usr/bin/env bash
# Stage 2: parser-based warp + generator end to end (the teacher), 50+50 epochs.
#   NGPU=4 DATAROOT=dataset/VITON_traindata bash scripts/train_pb_gen.sh [--resume] [--precision bf16] ...
set -euo pipefail
RUNS=${RUNS:-checkpoints}
exec bash "$(dirname "$0")/launch.sh" pb_gen --pb_warp_checkpoint "$RUNS/pb_warp/final.pth" "$@"
