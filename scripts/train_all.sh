#!/usr/bin/env bash
# The four stages in order, each from the previous one's final checkpoint, on NGPU GPUs.
# Re-running resumes: a finished stage (final.pth of its whole schedule) is skipped, an
# interrupted one, or one stopped by --max_steps, continues from its latest checkpoint.
#   NGPU=8 DATAROOT=dataset/VITON_traindata bash scripts/train_all.sh [--precision bf16 ...]
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-checkpoints}
python=${PYTHON:-python}
[ -n "${PYTHON:-}" ] || python -c "import torch" 2>/dev/null || python=.venv/bin/python
whole() {  # FILE: true when it holds its stage's whole schedule (not a --max_steps trial)
  "$python" -c 'import sys; from utils.checkpoint import read_checkpoint, stopped_early
sys.exit(1 if stopped_early(read_checkpoint(sys.argv[1])) else 0)' "$1"
}
for stage in pb_warp pb_gen pf_warp pf_gen; do
  if [ -f "$RUNS/$stage/final.pth" ] && whole "$RUNS/$stage/final.pth"; then
    echo "== $stage: done ($RUNS/$stage/final.pth), skipping"
    continue
  fi
  resume=()
  [ -f "$RUNS/$stage/latest.pth" ] && resume=(--resume)
  echo "== $stage"
  bash "scripts/train_$stage.sh" "${resume[@]}" "$@"
done
