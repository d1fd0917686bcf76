#!/usr/bin/env bash
# The four stages in order, each from the previous one's final checkpoint, on NGPU GPUs.
# Re-running resumes: a finished stage (final.pth of its whole schedule) is skipped, an
# interrupted one, or one stopped by --max_steps, continues from its latest checkpoint, and the
# stages after it start again.
#   NGPU=8 DATAROOT=dataset/VITON_traindata bash scripts/train_all.sh [--precision bf16 ...]
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-checkpoints}
python=${PYTHON:-python}    # as scripts/launch.sh picks it
if [ -z "${PYTHON:-}" ] && ! python -c "import torch" 2>/dev/null && [ -x .venv/bin/python ]; then
  python=.venv/bin/python
fi
# --overwrite starts every stage again; --resume is what a rerun does by itself.
overwrite=''
for arg in "$@"; do
  case $arg in
    --overwrite) overwrite=1 ;;
    --resume) echo "train_all.sh: leave out --resume: a rerun resumes by itself (see the top" \
                   "of scripts/train_all.sh)" >&2; exit 2 ;;
  esac
done
# The stages finished up to the first that is not (its final.pth holds its whole schedule, not
# a --max_steps trial's), read in one start of Python; a file that cannot be read stops here.
finished=''
[ -n "$overwrite" ] || finished=$("$python" -c 'import sys
from pathlib import Path
from common.errors import exit_on_user_error
from utils.checkpoint import read_checkpoint, stopped_early
with exit_on_user_error():
    for stage in sys.argv[2:]:
        path = Path(sys.argv[1], stage, "final.pth")
        if not path.is_file() or stopped_early(read_checkpoint(path)):
            break
        print(stage)' "$RUNS" pb_warp pb_gen pf_warp pf_gen)
has_run() {  # STAGE: true when RUNS/STAGE holds a checkpoint of a run
  compgen -G "$RUNS/$1/*.pth" >/dev/null
}
# Once a stage trains, every later stage's run, if any, was made from its earlier file: it
# starts again (--overwrite) instead of resuming or being skipped.
trained=''
for stage in pb_warp pb_gen pf_warp pf_gen; do
  run=() why=''
  if [ -n "$trained" ]; then
    if has_run "$stage"; then
      run=(--overwrite)
      why=": its run in $RUNS/$stage started from the $trained file that this command changed;"
      why+=" starting it again (--overwrite)"
    fi
  elif grep -qx "$stage" <<< "$finished"; then
    echo "== $stage: done ($RUNS/$stage/final.pth), skipping"
    continue
  elif [ -f "$RUNS/$stage/latest.pth" ] && [ -z "$overwrite" ]; then
    run=(--resume)
  fi
  echo "== $stage$why"
  bash "scripts/train_$stage.sh" "${run[@]}" "$@"
  trained=$stage
done
