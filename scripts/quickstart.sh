#!/usr/bin/env bash
# The main job on the built-in synthetic motion benchmark, end to end on CPU: make the data
# (mp4 clips, DIS optical flow, TFRecords), train the flow teacher, the RGB baseline and the D3D
# student, evaluate RGB, flow, two-stream, D3D and D3D+flow, and export the D3D student for
# TF Serving. Everything lands in $RUN (default runs/synthetic). A rerun resumes: finished data
# and finished training runs are kept. FRESH=1 starts over.
set -euo pipefail
cd "$(dirname "$0")/.."
RUN=runs/synthetic  # The configs/synthetic_*.flags files point here.
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
[ "${FRESH:-0}" = 1 ] && rm -rf "$RUN"
stage() { printf '\n=== %s (%s) ===\n' "$1" "$(date +%H:%M:%S)"; }
start=$(date +%s)

stage "1/6 synthetic motion benchmark"
if [ -f "$RUN/data/records/summary.json" ]; then
  echo "kept $RUN/data (delete it, or FRESH=1, to rebuild)"
else
  python -m tfrecords_tools.make_synthetic --output_dir="$RUN/data"
fi

for stream in flow rgb d3d; do
  case $stream in
    flow) stage "2/6 train the flow teacher" ;;
    rgb) stage "3/6 train the RGB baseline" ;;
    d3d) stage "4/6 train the D3D student (distilled from the flow teacher)" ;;
  esac
  python -m d3d_tf.train --flagfile="configs/synthetic_$stream.flags"
done

stage "5/6 evaluate"
eval_flags=(--eval_files="$RUN/data/records/val-*.tfrecord" --label_map="$RUN/data/records/label_map.txt"
            --num_clips=2 --num_frames=16 --crop_size=48)
python -m d3d_tf.evaluate --models="$RUN/rgb/student.keras,$RUN/flow/student.keras" \
  --output_dir="$RUN/eval/two_stream" "${eval_flags[@]}"
python -m d3d_tf.evaluate --models="$RUN/d3d/student.keras,$RUN/flow/student.keras" \
  --output_dir="$RUN/eval/d3d_flow" "${eval_flags[@]}"

stage "6/6 export the D3D student for TF Serving"
python -m d3d_tf.export --model="$RUN/d3d/student.keras" --label_map="$RUN/data/records/label_map.txt" \
  --export_base="$RUN/export" --name=d3d --version=1 --crop_size=48 --num_frames=16 --overwrite

echo
echo "Done in $(( $(date +%s) - start )) s. Reports: $RUN/eval/*/report.json; SavedModel: $RUN/export/d3d/1"
echo "TensorBoard: tensorboard --logdir $RUN"
