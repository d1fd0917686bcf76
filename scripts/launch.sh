#!/usr/bin/env bash
# Launch one training stage with torchrun on NGPU GPUs per node (default 1), keeping the
# paper's total batch of 32 (BATCH per GPU = 32 / (NGPU x NNODES) unless set).
#   bash scripts/launch.sh STAGE [script flags...]       STAGE: pb_warp | pb_gen | pf_warp | pf_gen
# Several nodes: run the same command on each node with NNODES, NODE_RANK and MASTER_ADDR set.
set -euo pipefail
cd "$(dirname "$0")/.."
stage=$1; shift
NGPU=${NGPU:-1}
NNODES=${NNODES:-1}
BATCH=${BATCH:-$((32 / (NGPU * NNODES)))}
DATAROOT=${DATAROOT:-dataset/VITON_traindata}
RUNS=${RUNS:-checkpoints}
if [ "$NNODES" -gt 1 ]; then
  launch=(torchrun --nnodes "$NNODES" --node_rank "${NODE_RANK:?set NODE_RANK}" \
          --nproc_per_node "$NGPU" --master_addr "${MASTER_ADDR:?set MASTER_ADDR}" \
          --master_port "${MASTER_PORT:-29500}")
else
  launch=(torchrun --standalone --nproc_per_node "$NGPU")
fi
exec "${launch[@]}" "train_$stage.py" --dataroot "$DATAROOT" --name "${NAME:-$stage}" \
  --checkpoints_dir "$RUNS" --batch_size "$BATCH" "$@"
