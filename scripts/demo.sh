#!/usr/bin/env bash
# The whole method on synthetic data, on a CPU, in minutes: set up .venv, write a synthetic
# VITON-format dataset, train the four stages (teacher, tutor, student) with configs/demo.yaml,
# then an FS-VTON student and a mobile (DM-VTON) student of the same teacher, make try-on images
# of the test pairs, score them against a simple baseline.
#   bash scripts/demo.sh            (outputs in demo_out/; DEMO_OUT=... to change, DEMO_SEED=... for
#                                    other synthetic data)
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
  --num_test "${DEMO_TEST:-32}" --seed "${DEMO_SEED:-0}" --height 128 --width 96

echo "== stage 1: parser-based warp"
python train_pb_warp.py "${common[@]}" --lr 0.001 --niter 0 --niter_decay 2
echo "== stage 2: parser-based warp + generator (teacher)"
python train_pb_gen.py "${common[@]}" --pb_warp_checkpoint "$runs/pb_warp/final.pth" \
  --lr_warp 0.0002 --niter 1 --niter_decay 0
echo "== stage 3: parser-free warp (student), distilled from the teacher"
python train_pf_warp.py "${common[@]}" --pb_checkpoint "$runs/pb_gen/final.pth" --lr 0.001 \
  --niter 1 --niter_decay 0
echo "== stage 4: parser-free warp + generator (student)"
python train_pf_gen.py "${common[@]}" --pb_checkpoint "$runs/pb_gen/final.pth" \
  --pf_warp_checkpoint "$runs/pf_warp/final.pth" --lr_warp 0.0002 --niter 2 --niter_decay 0 \
  --val_pairs paired

echo "== the family: an FS-VTON student and a mobile (DM-VTON) student of the same teacher"
for arch in fsvton mobile; do
  # Stage 3 builds the student's warp; stage 4 continues it and builds its generator.
  warp=(--warp_arch "$arch")
  gen=()
  if [ "$arch" = mobile ]; then
    warp=(--warp_arch mobile --fpn_dim 32 --mobile_width 0.5 --head_channels 16,16,8)
    gen=(--gen_arch mobile)              # configs/mobile_student.yaml at the demo's size
  fi
  # One epoch each (the PF-AFN student's stage 4 has two), to keep the demo within minutes.
  python train_pf_warp.py "${common[@]}" "${warp[@]}" --name "pf_warp_$arch" \
    --pb_checkpoint "$runs/pb_gen/final.pth" --lr 0.001 --niter 1 --niter_decay 0
  python train_pf_gen.py "${common[@]}" "${gen[@]}" --name "pf_gen_$arch" \
    --pb_checkpoint "$runs/pb_gen/final.pth" --pf_warp_checkpoint "$runs/pf_warp_$arch/final.pth" \
    --lr_warp 0.0002 --niter 1 --niter_decay 0 --val_pairs paired
done

echo "== try-on and scores"
student=(--dataroot "$test_root" --checkpoint "$runs/pf_gen/final.pth" --device cpu
         --workers 0 --allow_random_weights)
python test.py "${student[@]}" --pairs test_pairs_same.txt --results_dir "$OUT/results/paired" \
  --eval --metrics ssim,lpips
python test.py "${student[@]}" --pairs test_pairs.txt --results_dir "$OUT/results/unpaired" \
  --save_grid --eval --metrics fid
for arch in fsvton mobile; do
  python test.py "${student[@]}" --checkpoint "$runs/pf_gen_$arch/final.pth" \
    --pairs test_pairs_same.txt --results_dir "$OUT/results/paired_$arch" --eval --metrics ssim
done
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
