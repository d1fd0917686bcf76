#!/usr/bin/env bash
# Launch one training stage on NGPU GPUs per node (default 1; torchrun for more), keeping the
# paper's total batch of 32: BATCH per GPU when set, else the batch_size of a --config file
# that has one, else 32 / (NGPU x NNODES). The interpreter: PYTHON, else the active
# environment's python when it has PyTorch, else .venv's (scripts/setup_env.sh creates it).
#   bash scripts/launch.sh STAGE [script flags...]       STAGE: pb_warp | pb_gen | pf_warp | pf_gen
# Several nodes: run the same command on each node with NNODES, NODE_RANK and MASTER_ADDR set.
set -euo pipefail
cd "$(dirname "$0")/.."
stage=$1; shift
NGPU=${NGPU:-1}
NNODES=${NNODES:-1}
DATAROOT=${DATAROOT:-dataset/VITON_traindata}
RUNS=${RUNS:-checkpoints}
config_sets() {  # KEY FLAGS...: true when a --config among the flags sets KEY
  local key=$1 previous='' arg file
  shift
  for arg in "$@"; do
    file=''
    case $arg in --config=*) file=${arg#--config=} ;; esac
    [ "$previous" = --config ] && file=$arg
    [ -n "$file" ] && [ -f "$file" ] && grep -qE "^$key:" "$file" && return 0
    previous=$arg
  done
  return 1
}
# The data, the runs' folder and the run's name come from DATAROOT, RUNS and NAME (the stage
# scripts find each stage's checkpoints under RUNS/<stage>): a --config's would lose unseen.
for pair in dataroot:DATAROOT checkpoints_dir:RUNS name:NAME; do
  if config_sets "${pair%%:*}" "$@"; then
    echo "launch.sh: a --config sets ${pair%%:*}, which the launch scripts take from the" \
         "variable ${pair#*:}: set ${pair#*:} instead" >&2
    exit 2
  fi
done
batch=()
if [ -n "${BATCH:-}" ]; then
  batch=(--batch_size "$BATCH")
elif ! config_sets batch_size "$@"; then
  batch=(--batch_size "$((32 / (NGPU * NNODES)))")
fi
python=${PYTHON:-python}
if [ -z "${PYTHON:-}" ] && ! python -c "import torch" 2>/dev/null && [ -x .venv/bin/python ]; then
  python=.venv/bin/python
fi
if ! "$python" -c "import torch" 2>/dev/null; then
  echo "$python has no PyTorch: run 'source scripts/setup_env.sh' (it creates .venv) or set" \
       "PYTHON to an interpreter that has it" >&2
  exit 2
fi
# One process on one node runs plainly: torchrun would add its own report to every error.
launch=("$python" -m torch.distributed.run)   # torchrun, without needing it on PATH
if [ "$NGPU" = 1 ] && [ "$NNODES" = 1 ]; then
  launch=("$python")
elif [ "$NNODES" -gt 1 ]; then
  launch+=(--nnodes "$NNODES" --node_rank "${NODE_RANK:?set NODE_RANK}" \
           --nproc_per_node "$NGPU" --master_addr "${MASTER_ADDR:?set MASTER_ADDR}" \
           --master_port "${MASTER_PORT:-29500}")
else
  launch+=(--standalone --nproc_per_node "$NGPU")
fi
exec "${launch[@]}" "train_$stage.py" --dataroot "$DATAROOT" --name "${NAME:-$stage}" \
  --checkpoints_dir "$RUNS" "${batch[@]}" "$@"
