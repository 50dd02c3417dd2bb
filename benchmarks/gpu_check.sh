#!/usr/bin/env bash
# One command for a GPU machine with d3d_tf installed (pip install -e ".[test]"): the checks CI
# cannot run, then S3D-G 64x224x224 speed against the device's peak. Aim: under 5 minutes.
#   1. The tests whose code takes another path on GPU: cuDNN's 3D convs and pools instead of
#      models/frame_ops.py (the formulations are compared with TF's 3D ops on the device), the
#      fused batch norm, MirroredStrategy on the local devices, XLA, mixed bfloat16.
#   2. The training CLI on a tiny synthetic dataset with mixed_float16 (loss scaling),
#      mixed_bfloat16, XLA and --strategy=mirrored: a few steps each, exit code checked.
#   3. benchmarks/model_speed.py at 64x224x224: clips/s and TFLOP/s, float32 and bf16, XLA off
#      and on, against the peak below and a bf16 matmul measured in the same process.
# Usage: bash benchmarks/gpu_check.sh [OUT_DIR]   (JSON lines in OUT_DIR/model_speed.jsonl)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-runs/gpu_check}
mkdir -p "$OUT"
start=$(date +%s)
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
python - <<'PY'
import tensorflow as tf
gpus = tf.config.list_physical_devices("GPU")
if not gpus:
  raise SystemExit("gpu_check: error: TensorFlow sees no GPU (install tensorflow[and-cuda]).")
print(f"TensorFlow {tf.__version__} sees {len(gpus)} GPU(s)")
PY

echo "== 1. tests on the device ($(date +%T))"
python -m pytest -q -x tests/models/test_frame_ops.py tests/models/test_fused_batch_norm.py \
  tests/models/test_s3dg.py \
  "tests/distill/test_distiller.py::test_mirrored_two_replicas_match_one_replica" \
  "tests/distill/test_distiller.py::test_jit_compile_matches_eager_loss" \
  "tests/distill/test_distiller.py::test_mixed_bfloat16_smoke"

echo "== 2. training CLI: mixed precision, XLA, MirroredStrategy ($(date +%T))"
DATA="$OUT/data"
[ -f "$DATA/records/label_map.txt" ] || python -m tfrecords_tools.make_synthetic \
  --output_dir="$DATA" --train_per_class=2 --val_per_class=1 --test_per_class=0 --size=64
common=(--train_files="$DATA/records/train-*.tfrecord" --eval_files="$DATA/records/val-*.tfrecord"
        --label_map="$DATA/records/label_map.txt" --train_steps=6 --checkpoint_every=3
        --batch_size=8 --num_frames=16 --crop_size=64 --depth_multiplier=0.5 --eval_clips=1)
python -m d3d_tf.train --stream=flow --model_dir="$OUT/flow" --mixed_precision=mixed_float16 \
  "${common[@]}"
python -m d3d_tf.train --stream=d3d --teacher="$OUT/flow" --model_dir="$OUT/d3d_bf16_xla" \
  --mixed_precision=mixed_bfloat16 --jit_compile "${common[@]}"
python -m d3d_tf.train --stream=rgb --model_dir="$OUT/rgb_mirrored" --strategy=mirrored \
  "${common[@]}"

echo "== 3. S3D-G 64x224x224 speed ($(date +%T))"
python benchmarks/model_speed.py --shapes=64x224x224 --batch=8 --dtypes=float32,mixed_bfloat16 \
  --jit=off,on --matmul_size=8192 --repeats=5 | tee "$OUT/model_speed.jsonl"
python - "$OUT/model_speed.jsonl" "$(head -1 "$OUT/gpu.txt")" <<'PY'
import json, sys
# Dense (no sparsity) bf16 tensor-core peaks, TFLOP/s, from NVIDIA's data sheets (SXM parts).
PEAKS = {"H200": 989.4, "H100": 989.4, "A100": 312.0, "L4": 121.0, "A10": 125.0}
name = sys.argv[2]
peak = next((v for k, v in PEAKS.items() if k in name), None)
for line in open(sys.argv[1]):
  row = json.loads(line)
  if "clips_per_s" not in row:
    continue
  tflops = row["achieved_gflops"] / 1000
  share = f"{tflops / peak:.1%} of {peak} bf16 peak" if peak else "peak unknown"
  print(f"{row['name']:22s} {row['dtype']:15s} xla={row['jit']!s:5s} "
        f"{row['clips_per_s']:8.1f} clips/s {tflops:7.1f} TFLOP/s ({share})")
PY
echo "gpu_check: done in $(( $(date +%s) - start )) s; results in $OUT"
