#!/usr/bin/env bash
# The whole method on synthetic data, on a CPU, in minutes: set up .venv, write a synthetic
# VITON-format dataset, train the four stages (teacher, tutor, student) with configs/demo.yaml,
# make try-on images of the test pairs, score them against a simple baseline.
#   bash scripts/demo.sh            (outputs in demo_out/; DEMO_OUT=... to change)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup_env.sh
OUT=${DEMO_OUT:-demo_out}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-$(nproc)}
start=$(date +%s)
rm -rf "$OUT"
train="$OUT/data/VITON_traindata"
test_root="$OUT/data/VITON_test"
runs="$OUT/runs"
common=(--config configs/demo.yaml --dataroot "$train" --checkpoints_dir "$runs"
        --val_root "$test_root")

echo "== synthetic data"
python scripts/make_synthetic_data.py --out "$OUT/data" --num_train "${DEMO_TRAIN:-160}" \
  --num_test "${DEMO_TEST:-32}" --seed 0 --height 128 --width 96

echo "== stage 1: parser-based warp"
python train_pb_warp.py "${common[@]}" --lr 0.001 --niter 0 --niter_decay 2
echo "== stage 2: parser-based warp + generator (teacher)"
python train_pb_gen.py "${common[@]}" --pb_warp_checkpoint "$runs/pb_warp/final.pth" \
  --lr_warp 0.0002 --niter 1 --niter_decay 0
echo "== stage 3: parser-free warp (student), distilled from the teacher"
python train_pf_warp.py "${common[@]}" --pb_checkpoint "$runs/pb_gen/final.pth" --lr 0.001 \
  --niter 2 --niter_decay 0
echo "== stage 4: parser-free warp + generator (student)"
python train_pf_gen.py "${common[@]}" --pb_checkpoint "$runs/pb_gen/final.pth" \
  --pf_warp_checkpoint "$runs/pf_warp/final.pth" --lr_warp 0.0002 --niter 2 --niter_decay 0 \
  --val_pairs paired

echo "== try-on and scores"
student=(--dataroot "$test_root" --checkpoint "$runs/pf_gen/final.pth" --device cpu
         --workers 0 --allow_random_weights)
python test.py "${student[@]}" --pairs test_pairs_same.txt --results_dir "$OUT/results/paired" \
  --eval --metrics ssim,lpips
python test.py "${student[@]}" --pairs test_pairs.txt --results_dir "$OUT/results/unpaired" \
  --save_grid --eval --metrics fid
for mode in paired unpaired; do
  pairs=test_pairs.txt; metrics=fid
  [ "$mode" = paired ] && pairs=test_pairs_same.txt && metrics=ssim,lpips
  python scripts/baselines.py --dataroot "$test_root" --pairs "$pairs" --height 128 --width 96 \
    --results_dir "$OUT/results/paste_$mode"
  python scripts/evaluate.py --dataroot "$test_root" --pairs "$pairs" --metrics "$metrics" \
    --results_dir "$OUT/results/paste_$mode" --allow_random_weights \
    --out "$OUT/results/paste_$mode/scores.json" > /dev/null
done

echo "== summary"
python scripts/demo_report.py --out "$OUT"
echo "training logs and TensorBoard events: $runs/<stage>/ (tensorboard --logdir $runs)"
echo "demo finished in $(( $(date +%s) - start )) s"
