#!/usr/bin/env bash
# The main job on the built-in synthetic motion benchmark, end to end on CPU: make the data
# (mp4 clips, DIS optical flow, TFRecords), train the flow teacher, the RGB baseline and the D3D
# student, evaluate RGB, flow, two-stream, D3D and D3D+flow, export the D3D student for
# TF Serving, and print the results table (also written to $RUN/results.json).
#
# Usage: bash scripts/quickstart.sh [--fresh]
#   A rerun keeps every stage made with the same settings (and says so); a stage made with
#   other settings stops the run with what differs (use --fresh, or another RUN); --fresh starts
#   over. Each stage's settings are in <its output dir>/.made_with.
# Environment (scripts/reproduce.sh uses these; the defaults are the quickstart):
#   RUN=runs/synthetic   run directory (layout: WORKSPACE.md)
#   DATA=$RUN/data       synthetic dataset directory (shared between seed runs)
#   SEED=0               seed of every model's initialisation, data order and augmentation
#   DATA_FLAGS=--flagfile=configs/synthetic_data.flags   flags for tfrecords_tools.make_synthetic
#   TRAIN_FLAGS=""       extra flags for every d3d_tf.train run (e.g. --train_steps=800)
#   FLOW_TRAIN_FLAGS="", RGB_TRAIN_FLAGS="", D3D_TRAIN_FLAGS=""   extra flags for one stream's
#                        run, after TRAIN_FLAGS (e.g. each model's steps cut by the same factor)
# Data with an unlabelled split (make_synthetic --unlabelled_per_class): the flow teacher trains
# on train + unlabelled with labels, RGB on train alone, D3D on train plus the unlabelled clips
# with their labels hidden (d3d_tf.train --unlabelled_train_files).
set -euo pipefail
cd "$(dirname "$0")/.."
# The reference table in README.md was made with S3D-G's 3D convs and pools computed as 2D ops
# over frames. On CPU, d3d_tf otherwise picks each layer type's faster formulation by timing
# both on the machine (exact to float rounding, but 3000 steps turn rounding into a different
# network, as a seed would): pinned here so the table reproduces; D3D_TF_FRAME_OPS=auto to pick.
export D3D_TF_FRAME_OPS=${D3D_TF_FRAME_OPS:-2d}

fresh=0
for arg in "$@"; do
  case $arg in
    --fresh) fresh=1 ;;
    -h|--help) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "quickstart.sh: unknown argument '$arg'; the only option is --fresh." >&2; exit 2 ;;
  esac
done
RUN=${RUN:-runs/synthetic}
DATA=${DATA:-$RUN/data}
SEED=${SEED:-0}
read -r -a data_flags <<< "${DATA_FLAGS---flagfile=configs/synthetic_data.flags}"
read -r -a train_flags <<< "${TRAIN_FLAGS:-}"
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
keep() { echo "kept: $1 exists, made with these settings (--fresh to redo)"; kept=1; }

# run_stage DIR MARKER INPUTS -- COMMAND...: runs COMMAND, then records it in DIR/.made_with
# with INPUTS (the .made_with files of the stages it reads) and the time. When MARKER exists the
# stage is kept if the record (time aside) matches, else the run stops and shows the difference;
# an input stage redone since then differs in its time, so its readers are not silently kept.
run_stage() {
  local dir=$1 marker=$2 inputs=() made
  shift 2
  while [ "$1" != "--" ]; do inputs+=("$1"); shift; done
  shift
  made=$(printf '%s\n' "$@"; for f in "${inputs[@]}"; do echo "## input $f"; cat "$f"; done)
  if [ -e "$marker" ]; then
    if [ -f "$dir/.made_with" ] && [ "$(sed '$d' "$dir/.made_with")" = "$made" ]; then
      keep "$marker"
      return
    fi
    echo "quickstart.sh: $dir exists but was made with other settings than asked for now:" >&2
    if [ -f "$dir/.made_with" ]; then
      diff <(sed '$d' "$dir/.made_with") <(echo "$made") \
        | sed -n 's/^</  then:/p; s/^>/  now: /p' >&2 || true
    else
      echo "  (no $dir/.made_with: made by an older quickstart.sh)" >&2
    fi
    echo "Run with --fresh to redo every stage, or pick another RUN=<dir>." >&2
    exit 2
  fi
  "$@"
  { echo "$made"; echo "## made at $(date +%Y-%m-%dT%H:%M:%S.%N)"; } > "$dir/.made_with"
}

stage "1/7 synthetic motion benchmark: clips, optical flow, TFRecords"
run_stage "$DATA" "$DATA/records/summary.json" -- \
  python -m tfrecords_tools.make_synthetic --output_dir="$DATA" "${data_flags[@]}"

records="$DATA/records"
common=(--train_files="$records/train-*.tfrecord" --eval_files="$records/val-*.tfrecord"
        --label_map="$records/label_map.txt" --seed="$SEED")
unlabelled=""
if compgen -G "$records/unlabelled-*.tfrecord" > /dev/null; then
  unlabelled="$records/unlabelled-*.tfrecord"
  echo "note: $records has an unlabelled split: the flow teacher trains on it with labels, D3D"\
    "without them (--unlabelled_train_files), RGB not at all."
fi
mkdir -p "$RUN/flow" "$RUN/rgb" "$RUN/d3d" "$RUN/eval/two_stream" "$RUN/eval/d3d_flow" \
  "$RUN/export/d3d"
for stream in flow rgb d3d; do
  case $stream in
    flow) stage "2/7 train the flow teacher" ;;
    rgb) stage "3/7 train the RGB baseline" ;;
    d3d) stage "4/7 train the D3D student (distilled from the flow teacher)" ;;
  esac
  teacher=()
  inputs=("$DATA/.made_with")
  if [ "$stream" = d3d ]; then
    teacher=(--teacher="$RUN/flow")
    inputs+=("$RUN/flow/.made_with")
  fi
  files=()  # Where the unlabelled split goes (none without one: the usual commands).
  if [ -n "$unlabelled" ] && [ "$stream" = flow ]; then
    files=(--train_files="$records/train-*.tfrecord,$unlabelled")
  elif [ -n "$unlabelled" ] && [ "$stream" = d3d ]; then
    files=(--unlabelled_train_files="$unlabelled")
  fi
  stream_var="${stream^^}_TRAIN_FLAGS"
  read -r -a stream_flags <<< "${!stream_var:-}"
  run_stage "$RUN/$stream" "$RUN/$stream/final_metrics.json" "${inputs[@]}" -- \
    python -m d3d_tf.train --flagfile="configs/synthetic_$stream.flags" "${common[@]}" "${files[@]}" \
      --model_dir="$RUN/$stream" "${teacher[@]}" "${train_flags[@]}" "${stream_flags[@]}"
done

stage "5/7 evaluate RGB, flow, two-stream, D3D and D3D + flow on the test split"
# Training watched the val split; the table comes from test clips no choice was made on.
eval_files="$records/test-*.tfrecord"
if ! compgen -G "$eval_files" > /dev/null; then
  echo "note: $records has no test split (make_synthetic --test_per_class); the table uses val."
  eval_files="$records/val-*.tfrecord"
fi
# The clip geometry (8 frames x 32 px) and the class names come from the models themselves.
for pair in "two_stream rgb" "d3d_flow d3d"; do
  read -r name student <<< "$pair"
  run_stage "$RUN/eval/$name" "$RUN/eval/$name/report.json" "$RUN/$student/.made_with" \
    "$RUN/flow/.made_with" -- \
    python -m d3d_tf.evaluate --models="$RUN/$student/student.keras,$RUN/flow/student.keras" \
      --output_dir="$RUN/eval/$name" --eval_files="$eval_files" --num_clips=2
done

stage "6/7 export the D3D student for TF Serving"
run_stage "$RUN/export/d3d" "$RUN/export/d3d/1/saved_model.pb" "$RUN/d3d/.made_with" -- \
  python -m d3d_tf.export --model="$RUN/d3d/student.keras" --export_base="$RUN/export" \
    --name=d3d --version=1 --overwrite

stage "7/7 results table"
python -m d3d_tf.report --quickstart_dir="$RUN" --table_only
end_stage

total=$(( $(date +%s) - start ))
python - "$RUN/timing.json" "$total" "bash scripts/quickstart.sh $*" "${timings[@]}" <<'PY'
# A kept stage keeps the seconds measured when it was made (from the previous timing.json).
import json, os, sys
path, total, command, *stages = sys.argv[1:]
before = {}
if os.path.isfile(path):
  with open(path) as f:
    before = {row["stage"]: row for row in json.load(f).get("stages", [])}
rows = []
for item in stages:
  name, seconds, kept = item.split("|")
  row = dict(stage=name, seconds=int(seconds), kept=kept == "1")
  if row["kept"]:
    row["seconds"] = before.get(name, {}).get("seconds")  # None: made before timing.json.
  rows.append(row)
with open(path, "w") as f:
  json.dump(dict(command=command, seconds=int(total), stages=rows,
                 load_average_at_end=[round(x, 2) for x in os.getloadavg()]), f, indent=2)
PY
echo
echo "Done in ${total} s. Results: $RUN/results.json; reports: $RUN/eval/*/; SavedModel: $RUN/export/d3d/1"
echo "TensorBoard: tensorboard --logdir $RUN"
