#!/usr/bin/env bash
# The four stages in order, each from the previous one's final checkpoint, on NGPU GPUs.
# Re-running resumes: a finished stage (final.pth present) is skipped, an interrupted one
# continues from its latest checkpoint.
#   NGPU=8 DATAROOT=dataset/VITON_traindata bash scripts/train_all.sh [--precision bf16 ...]
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-checkpoints}
for stage in pb_warp pb_gen pf_warp pf_gen; do
  if [ -f "$RUNS/$stage/final.pth" ]; then
    echo "== $stage: done ($RUNS/$stage/final.pth), skipping"
    continue
  fi
  resume=()
  [ -f "$RUNS/$stage/latest.pth" ] && resume=(--resume)
  echo "== $stage"
  bash "scripts/train_$stage.sh" "${resume[@]}" "$@"
done
