#!/usr/bin/env bash
# The four stages in order, each from the previous one's final checkpoint, on NGPU GPUs.
# Re-running resumes: a finished stage (final.pth of its whole schedule) is skipped, an
# interrupted one, or one stopped by --max_steps, continues from its latest checkpoint.
#   NGPU=8 DATAROOT=dataset/VITON_traindata bash scripts/train_all.sh [--precision bf16 ...]
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-checkpoints}
python=${PYTHON:-python}    # as scripts/launch.sh picks it
if [ -z "${PYTHON:-}" ] && ! python -c "import torch" 2>/dev/null && [ -x .venv/bin/python ]; then
  python=.venv/bin/python
fi
trial() {  # FILE: true for a --max_steps trial's final.pth; a file it cannot read stops here
  "$python" -c 'import sys
from common.errors import exit_on_user_error
from utils.checkpoint import read_checkpoint, stopped_early
with exit_on_user_error():
    sys.exit(3 if stopped_early(read_checkpoint(sys.argv[1])) else 0)' "$1" && return 1
  local status=$?
  [ "$status" = 3 ] && return 0
  exit "$status"
}
for stage in pb_warp pb_gen pf_warp pf_gen; do
  if [ -f "$RUNS/$stage/final.pth" ] && ! trial "$RUNS/$stage/final.pth"; then
    echo "== $stage: done ($RUNS/$stage/final.pth), skipping"
    continue
  fi
  resume=()
  [ -f "$RUNS/$stage/latest.pth" ] && resume=(--resume)
  echo "== $stage"
  bash "scripts/train_$stage.sh" "${resume[@]}" "$@"
done
