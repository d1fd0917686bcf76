#!/usr/bin/env bash
# The whole method on a CPU in minutes: set up .venv, write a synthetic VITON-format dataset,
# train the parser-based teacher (stages 1-2), then three parser-free students of it (stages
# 3-4): PF-AFN's, FS-VTON's and the mobile (DM-VTON) one; make try-on images of the test pairs,
# score them against pasting the garment unwarped, and write demo_out/report.md.
#   bash scripts/demo.sh            outputs in demo_out/
#   DEMO_OUT=DIR                    another output folder
#   DEMO_SEED=N                     other synthetic data
#   DEMO_DATA=DIR                   the same recipe on an existing VITON-format root (its
#                                   VITON_traindata/ and VITON_test/) instead of synthetic data;
#                                   a VITON_test without parsing validates stage 4 only, one
#                                   without test_pairs.txt dresses each test person in the next
#                                   one's garment for the unpaired try-ons
#   DEMO_TRAIN=N, DEMO_TEST=N       training persons (at least 4) and test pairs, 160 and 32:
#                                   how many the synthetic data has, or the first ones of
#                                   DEMO_DATA's lists (0: all of them)
#   DEMO_PRECISION=fp32|bf16        the number format of training (default: bf16 where the CPU
#                                   runs it natively, AVX-512 BF16 or AMX; fp32 elsewhere)
set -euo pipefail
# Folders the user names are taken from the folder the demo was started in.
for name in DEMO_DATA DEMO_OUT; do
  case ${!name:-} in ''|/*) ;; *) printf -v "$name" '%s' "$PWD/${!name}" ;; esac
done
CDPATH='' cd -- "$(dirname "$0")/.."
# What the variables ask for is checked before anything is set up or written.
DEMO_TRAIN=${DEMO_TRAIN:-160}
DEMO_TEST=${DEMO_TEST:-32}
for name in DEMO_TRAIN DEMO_TEST; do
  case ${!name} in
    ''|*[!0-9]*) echo "$name=${!name}: expected a count (0 or more)" >&2; exit 2 ;;
  esac
  printf -v "$name" '%d' "$((10#${!name}))"
done
if [ -z "${DEMO_DATA:-}" ] && { [ "$DEMO_TRAIN" = 0 ] || [ "$DEMO_TEST" = 0 ]; }; then
  echo "DEMO_TRAIN=0 / DEMO_TEST=0 (all) need DEMO_DATA: synthetic data needs a count" >&2
  exit 2
fi
case ${DEMO_SEED:-0} in
  *[!0-9]*) echo "DEMO_SEED=$DEMO_SEED: expected a number (0 or more)" >&2; exit 2 ;;
esac
if [ -n "${DEMO_DATA:-}" ] && [ -n "${DEMO_SEED:-}" ]; then
  echo "DEMO_SEED=$DEMO_SEED: the seed of the synthetic data, which DEMO_DATA replaces" >&2
  exit 2
fi
case ${DEMO_PRECISION:-auto} in
  auto|fp32|bf16) ;;
  *) echo "DEMO_PRECISION=$DEMO_PRECISION: expected fp32 or bf16 (or auto)" >&2; exit 2 ;;
esac
if [ "$DEMO_TRAIN" != 0 ] && [ "$DEMO_TRAIN" -lt 4 ]; then
  echo "DEMO_TRAIN=$DEMO_TRAIN: at least 4 training persons (a batch), or 0 for all" >&2
  exit 2
fi
OUT=${DEMO_OUT:-demo_out}
if [ -n "${DEMO_DATA:-}" ]; then
  for split in VITON_traindata VITON_test; do
    [ -d "$DEMO_DATA/$split" ] || { echo "DEMO_DATA=$DEMO_DATA: no $split/ there" >&2; exit 2; }
  done
  case "$(realpath "$DEMO_DATA")/" in
    "$(realpath -m "$OUT")"/*)
      echo "DEMO_DATA=$DEMO_DATA is inside the output folder $OUT, which the demo replaces:" \
           "copy it elsewhere or set DEMO_OUT" >&2
      exit 2 ;;
  esac
fi
# The output folder is replaced only when it is a demo's (it holds .demo_out, or logs/ and
# runs/ from before that mark) or empty: no other folder is ever deleted.
if [ -e "$OUT" ] && ! [ -f "$OUT/.demo_out" ] && ! { [ -d "$OUT/logs" ] && [ -d "$OUT/runs" ]; } \
    && [ -n "$(ls -A "$OUT" 2>&1)" ]; then
  echo "$OUT: not a demo's output folder and not empty; the demo writes into a new or empty" \
       "folder, or replaces a previous demo's (set DEMO_OUT)" >&2
  exit 2
fi
source scripts/setup_env.sh
# One thread per process: the students train side by side, one per core; on a busy machine
# two threads per process were several times slower than one. Stages 1 and 2 run alone, on two
# threads where there are two cores. A given OMP_NUM_THREADS holds for every stage.
if [ -n "${OMP_NUM_THREADS:-}" ]; then
  alone=$OMP_NUM_THREADS
else
  cores=$(nproc 2>/dev/null || getconf _NPROCESSORS_ONLN 2>/dev/null || echo 1)
  alone=$(( cores >= 2 ? 2 : 1 ))
fi
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
start=$(date +%s)
rm -rf "$OUT"
mkdir -p "$OUT/logs"
touch "$OUT/.demo_out"
if [ -n "${DEMO_DATA:-}" ]; then
  data=$DEMO_DATA
  echo "== data: $data"
else
  data="$OUT/data"
  echo "== synthetic data"
  python scripts/make_synthetic_data.py --out "$data" --num_train "$DEMO_TRAIN" \
    --num_test "$DEMO_TEST" --seed "${DEMO_SEED:-0}" --height 128 --width 96
fi
precision=${DEMO_PRECISION:-auto}
if [ "$precision" = auto ]; then
  precision=$(python -c "from utils.inference.precision import unsupported
print('fp32' if unsupported('bf16', 'cpu') else 'bf16')")
fi
echo "== training in $precision"
train="$data/VITON_traindata"
test_root="$data/VITON_test"
runs="$OUT/runs"
common=(--config configs/demo.yaml --dataroot "$train" --checkpoints_dir "$runs"
        --precision "$precision" --max_dataset_size "$DEMO_TRAIN")
# Stages 1-3 are scored on the persons' parsing; a test split without it (PF-AFN's own
# VITON_test has photos, garments and masks only) validates stage 4 alone.
val=(--val_root "$test_root")
parser_val=("${val[@]}")
if ! python -c "import sys; from pathlib import Path; from scripts.demo_report import has_labels
sys.exit(0 if has_labels(Path(sys.argv[1])) else 1)" "$test_root"; then
  echo "== $test_root has no parsing (test_label/, test_pose/): only stage 4 is validated"
  parser_val=()
fi
teacher="$runs/pb_gen/final.pth"
# The pairs tested and scored: the first DEMO_TEST of each list (OUT/pairs/paired.txt, and
# unpaired.txt), so a split as large as VITON's costs no more than the demo's own.
pairs="$(CDPATH='' cd -- "$OUT" && pwd)/pairs"
python scripts/demo_report.py --out "$OUT" --dataroot "$test_root" --write_pairs "$DEMO_TEST"

# The steps go where the try-on is made. The teacher's generator takes four epochs in batches
# of two (eight times the updates of a warp stage's one epoch in batches of four) at twice the
# config's rate, each student's generator two epochs; the teacher's validation runs every 80
# steps. Against 0.002, its rate brought the Res-UNet students 0.7-1.5 levels closer to the
# photo outside the garment on seeds 0-2. Six and eight epochs brought them 0.3-1.1 more on
# average, for 20 and 42 s more on an AMD EPYC (where the teacher's 320 steps take 43 s; 73 s
# on a Xeon with AMX): more than the demo's six minutes leave on a slow hour.
teacher_schedule=(--batch_size 2 --niter 2 --niter_decay 2 --lr 0.004)
[ ${#parser_val[@]} = 0 ] || teacher_schedule+=(--val_every 80)
echo "== stage 1: parser-based warp"
OMP_NUM_THREADS=$alone python train_pb_warp.py "${common[@]}" "${parser_val[@]}" --lr 0.001 \
  --niter 1 --niter_decay 0
echo "== stage 2: parser-based warp + generator (teacher)"
OMP_NUM_THREADS=$alone python train_pb_gen.py "${common[@]}" "${parser_val[@]}" \
  "${teacher_schedule[@]}" --pb_warp_checkpoint "$runs/pb_warp/final.pth" --lr_warp 0.0002

student() {  # NAME [warp flags...] -- [generator flags...]: stages 3 and 4, then its try-ons
  local name=$1 warp=() gen=()
  shift
  while [ "$1" != -- ]; do warp+=("$1"); shift; done
  shift
  gen=("$@")
  python train_pf_warp.py "${common[@]}" "${parser_val[@]}" "${warp[@]}" --name "pf_warp$name" \
    --pb_checkpoint "$teacher" --lr 0.001 --niter 1 --niter_decay 0
  python train_pf_gen.py "${common[@]}" "${val[@]}" --niter 1 --niter_decay 1 "${gen[@]}" \
    --name "pf_gen$name" --pb_checkpoint "$teacher" \
    --pf_warp_checkpoint "$runs/pf_warp$name/final.pth" --lr_warp 0.0002
  local model=(--dataroot "$test_root" --checkpoint "$runs/pf_gen$name/final.pth" --device cpu
               --workers 0)
  python test.py "${model[@]}" --pairs "$pairs/paired.txt" \
    --results_dir "$OUT/results/paired$name" --eval --metrics ssim
  python test.py "${model[@]}" --pairs "$pairs/unpaired.txt" \
    --results_dir "$OUT/results/unpaired$name"
}

baselines() {  # the garment pasted unwarped, on the pairs the students are tested on, and
  # the teacher's own try-ons of the paired pairs (where the test split has the parsing it needs)
  local mode
  for mode in paired unpaired; do
    python scripts/baselines.py --dataroot "$test_root" --pairs "$pairs/$mode.txt" \
      --height 128 --width 96 --results_dir "$OUT/results/paste_$mode"
  done
  python scripts/evaluate.py --dataroot "$test_root" --pairs "$pairs/paired.txt" \
    --metrics ssim --results_dir "$OUT/results/paste_paired" \
    --out "$OUT/results/paste_paired/scores.json" > /dev/null
  if [ ${#parser_val[@]} != 0 ]; then   # its try-ons and their scores.json
    python scripts/demo_report.py --out "$OUT" --dataroot "$test_root" --pairs_dir "$pairs" \
      --write_teacher "$teacher"
  fi
}


# The three students are independent: they train side by side (one thread each), and the paste
# baseline and the teacher's try-ons beside them, each logged to its own file.
echo "== stages 3-4: the PF-AFN, FS-VTON and mobile students of the teacher (logs in $OUT/logs/)"
pids=()
names=()
run_logged() {  # NAME COMMAND...: run it in the background, its output in $OUT/logs/NAME.log
  "${@:2}" > "$OUT/logs/$1.log" 2>&1 &
  pids+=($!)
  names+=("$1")
}
# Each job in its own process group (set -m), so that when the demo stops (a step failed,
# Ctrl-C, kill) the jobs still running stop too, with all they started.
set -m
stop_jobs() {
  local pid
  for pid in $(jobs -pr); do kill -- "-$pid" 2>/dev/null || true; done
}
trap stop_jobs EXIT
# The Res-UNet students' generators start from the teacher's (--gen_init teacher), at half the
# learning rate of one trained from scratch (at 0.002 they strayed ~3 levels further from the
# photo outside the garment).
run_logged pfafn_student student "" -- --gen_init teacher --lr 0.001
run_logged fsvton_student student _fsvton --warp_arch fsvton -- --gen_init teacher --lr 0.001
# The mobile student: configs/mobile_student.yaml's networks at the demo's size. Its generator,
# trained from scratch at 0.004, ends at half that rate (--niter 0 --niter_decay 2): at the
# full rate to the end its last steps swung the validation SSIM by up to 0.04. At 0.002 (beside
# a teacher of four epochs at 0.002) it painted the backdrops of a tinted-backdrop 256x192 root
# 28 levels off and ended 0.031 below pasting the garment, at 0.004 0.058 above; beside one of
# eight epochs at 0.004 it moved its paired SSIM by +0.024, +0.011, -0.001 on seeds 0-2 and
# +0.007 on that root.
run_logged mobile_student student _mobile --warp_arch mobile --fpn_dim 32 --mobile_width 0.5 \
  --head_channels 16,16,8 -- --gen_arch mobile --niter 0 --niter_decay 2 --lr 0.004
run_logged baselines baselines
failed=0
for i in "${!pids[@]}"; do
  if ! wait "${pids[$i]}"; then
    echo "${names[$i]} failed; the end of $OUT/logs/${names[$i]}.log:" >&2
    tail -n 20 "$OUT/logs/${names[$i]}.log" >&2
    failed=1
  fi
done
[ "$failed" = 0 ] || exit 1

echo "== summary"
python scripts/demo_report.py --out "$OUT" --dataroot "$test_root" --pairs_dir "$pairs"
echo "training logs and TensorBoard events: $runs/<stage>/ (tensorboard --logdir $(printf %q "$runs"))"
echo "demo finished in $(( $(date +%s) - start )) s"
