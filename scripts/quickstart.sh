#!/usr/bin/env bash
# The main job on the built-in synthetic motion benchmark, end to end on CPU: make the data
# (mp4 clips, DIS optical flow, TFRecords), train the flow teacher, the RGB baseline and the D3D
# student, evaluate RGB, flow, two-stream, D3D and D3D+flow, export the D3D student for
# TF Serving, and print the results table (also written to $RUN/results.json).
#
# Usage: bash scripts/quickstart.sh [--fresh]
#   A rerun keeps every stage whose outputs exist (and says so); --fresh starts over.
# Environment (scripts/reproduce.sh uses these; the defaults are the quickstart):
#   RUN=runs/synthetic   run directory (layout: WORKSPACE.md)
#   DATA=$RUN/data       synthetic dataset directory (shared between seed runs)
#   SEED=0               seed of every model's initialisation, data order and augmentation
#   DATA_FLAGS=--flagfile=configs/synthetic_data.flags   flags for tfrecords_tools.make_synthetic
#   TRAIN_FLAGS=""       extra flags for every d3d_tf.train run (e.g. --train_steps=800)
set -euo pipefail
cd "$(dirname "$0")/.."

fresh=0
for arg in "$@"; do
  case $arg in
    --fresh) fresh=1 ;;
    -h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "quickstart.sh: unknown argument '$arg'; the only option is --fresh." >&2; exit 2 ;;
  esac
done
RUN=${RUN:-runs/synthetic}
DATA=${DATA:-$RUN/data}
SEED=${SEED:-0}
read -r -a data_flags <<< "${DATA_FLAGS---flagfile=configs/synthetic_data.flags}"
read -r -a train_flags <<< "${TRAIN_FLAGS:-}"
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
[ "$fresh" = 1 ] && rm -rf "$RUN"
mkdir -p "$RUN"
start=$(date +%s)
timings=()  # "name seconds kept" per stage, for $RUN/timing.json.
stage_name=""
stage_start=0
kept=0

end_stage() {
  if [ -n "$stage_name" ]; then
    local seconds=$(( $(date +%s) - stage_start ))
    echo "--- $stage_name: $( [ $kept = 1 ] && echo kept || echo "done in ${seconds} s" )"
    timings+=("$stage_name|$seconds|$kept")
  fi
}
stage() {
  end_stage
  stage_name=$1
  stage_start=$(date +%s)
  kept=0
  printf '\n=== %s (%s) ===\n' "$1" "$(date +%H:%M:%S)"
}
keep() { echo "kept: $1 exists (--fresh, or delete it, to redo this stage)"; kept=1; }

stage "1/7 synthetic motion benchmark: clips, optical flow, TFRecords"
if [ -f "$DATA/records/summary.json" ]; then
  keep "$DATA/records/summary.json"
else
  python -m tfrecords_tools.make_synthetic --output_dir="$DATA" "${data_flags[@]}"
fi

records="$DATA/records"
common=(--train_files="$records/train-*.tfrecord" --eval_files="$records/val-*.tfrecord"
        --label_map="$records/label_map.txt" --seed="$SEED")
for stream in flow rgb d3d; do
  case $stream in
    flow) stage "2/7 train the flow teacher" ;;
    rgb) stage "3/7 train the RGB baseline" ;;
    d3d) stage "4/7 train the D3D student (distilled from the flow teacher)" ;;
  esac
  if [ -f "$RUN/$stream/final_metrics.json" ]; then
    keep "$RUN/$stream/final_metrics.json"
  else
    teacher=()
    [ "$stream" = d3d ] && teacher=(--teacher="$RUN/flow")
    python -m d3d_tf.train --flagfile="configs/synthetic_$stream.flags" "${common[@]}" \
      --model_dir="$RUN/$stream" "${teacher[@]}" "${train_flags[@]}"
  fi
done

stage "5/7 evaluate RGB, flow, two-stream, D3D and D3D + flow on the test split"
# Training watched the val split; the table comes from test clips no choice was made on.
eval_files="$records/test-*.tfrecord"
if ! compgen -G "$eval_files" > /dev/null; then
  echo "note: $records has no test split (make_synthetic --test_per_class); the table uses val."
  eval_files="$records/val-*.tfrecord"
fi
eval_flags=(--eval_files="$eval_files" --label_map="$records/label_map.txt"
            --num_clips=2 --num_frames=8 --crop_size=32)
for pair in "two_stream rgb" "d3d_flow d3d"; do
  read -r name student <<< "$pair"
  if [ -f "$RUN/eval/$name/report.json" ]; then
    keep "$RUN/eval/$name/report.json"
  else
    python -m d3d_tf.evaluate --models="$RUN/$student/student.keras,$RUN/flow/student.keras" \
      --output_dir="$RUN/eval/$name" "${eval_flags[@]}"
  fi
done

stage "6/7 export the D3D student for TF Serving"
if [ -f "$RUN/export/d3d/1/saved_model.pb" ]; then
  keep "$RUN/export/d3d/1"
else
  python -m d3d_tf.export --model="$RUN/d3d/student.keras" --label_map="$records/label_map.txt" \
    --export_base="$RUN/export" --name=d3d --version=1 --crop_size=32 --num_frames=8 --overwrite
fi

stage "7/7 results table"
python -m d3d_tf.report --quickstart_dir="$RUN" --table_only
end_stage

total=$(( $(date +%s) - start ))
python - "$RUN/timing.json" "$total" "bash scripts/quickstart.sh $*" "${timings[@]}" <<'PY'
import json, os, sys
path, total, command, *stages = sys.argv[1:]
rows = [dict(stage=s.split("|")[0], seconds=int(s.split("|")[1]), kept=s.split("|")[2] == "1")
        for s in stages]
json.dump(dict(command=command, seconds=int(total), stages=rows,
               load_average_at_end=[round(x, 2) for x in os.getloadavg()]),
          open(path, "w"), indent=2)
PY
echo
echo "Done in ${total} s. Results: $RUN/results.json; reports: $RUN/eval/*/; SavedModel: $RUN/export/d3d/1"
echo "TensorBoard: tensorboard --logdir $RUN"
