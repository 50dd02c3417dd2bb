#!/usr/bin/env bash
# The teacher control of "When does D3D help?" (docs/BENCHMARK.md) on a finished
# scripts/reproduce.sh root: per seed, an RGB teacher is trained as that seed's flow teacher was
# (its network, recipe, clips and labels; RGB input, TEACHER_STEPS steps), then a D3D student
# distilled from it with the seed's D3D recipe (--same_modality_teacher).
# So flow-teacher D3D (in ROOT) and RGB-teacher D3D (in OUT) differ only in the teacher's input.
# Each seed is evaluated as quickstart.sh does; OUT/seed_*/eval/two_stream is ROOT's own (the same
# RGB baseline and flow teacher), so OUT is a report root whose D3D column is the RGB-teacher
# student: `python -m d3d_tf.report ... --variant_roots=ROOT,OUT`.
#
# Usage: ROOT=runs/unlabelled bash scripts/teacher_control.sh
# Environment: ROOT (required), OUT=$ROOT-rgb-teacher, SEEDS (default: every seed_* of ROOT),
# TEACHER_STEPS=1000, PROBE=1: the motion probe per seed at PROBE_ENDPOINTS (default
# Conv2d_2c_3x3,Mixed_3c) of RGB, flow-teacher D3D and RGB-teacher D3D, in OUT/seed_*/probe;
# seed PROBE_TEACHERS_SEED's (default: the first of SEEDS) also probes both teachers and a
# random-init control. PROBE=0 skips it.
# Finished runs are kept on a rerun, per seed and stage; delete OUT to start over.
set -euo pipefail
export D3D_TF_FRAME_OPS=${D3D_TF_FRAME_OPS:-2d}  # As quickstart.sh: the formulation its rows used.
cd "$(dirname "$0")/.."
case "${1:-}" in
  -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  "") ;;
  *) echo "teacher_control.sh: no arguments (settings are environment variables; see --help)." >&2
     exit 2 ;;
esac
ROOT=${ROOT:?teacher_control.sh: set ROOT to a scripts/reproduce.sh root (see --help)}
OUT=${OUT:-$ROOT-rgb-teacher}
TEACHER_STEPS=${TEACHER_STEPS:-1000}
PROBE=${PROBE:-1}
PROBE_ENDPOINTS=${PROBE_ENDPOINTS:-Conv2d_2c_3x3,Mixed_3c}
source scripts/seed_roots.sh
SEEDS=${SEEDS:-$(seeds_of "$ROOT")}
require_seed_files teacher_control.sh "$ROOT" "$SEEDS" rgb/flags.txt d3d/flags.txt flow/flags.txt \
  flow/student.keras eval/two_stream/report.json
records="$ROOT/data/records"
mkdir -p "$OUT"
note="D3D's teacher is an RGB network trained $TEACHER_STEPS steps as the flow teacher was"
write_variant "$OUT" "$ROOT" " with an RGB teacher (control)" "$note (--same_modality_teacher)" \
  "ROOT=$ROOT TEACHER_STEPS=$TEACHER_STEPS bash scripts/teacher_control.sh"
eval_files="$records/test-*.tfrecord"
compgen -G "$eval_files" > /dev/null || eval_files="$records/val-*.tfrecord"
PROBE_TEACHERS_SEED=${PROBE_TEACHERS_SEED:-${SEEDS%% *}}
for seed in $SEEDS; do
  src="$ROOT/seed_$seed" dst="$OUT/seed_$seed"
  echo; echo "##### RGB-teacher control, seed $seed ($(date +%H:%M:%S)) #####"
  if [ -f "$dst/rgb_teacher/student.keras" ]; then
    echo "kept: $dst/rgb_teacher"
  else
    # The flow teacher's network, recipe and training files (labels included), on RGB.
    python -m d3d_tf.train --flagfile="$src/flow/flags.txt" --stream=rgb \
      --model_dir="$dst/rgb_teacher" --train_steps="$TEACHER_STEPS" \
      --checkpoint_every=$(( (TEACHER_STEPS + 1) / 2 ))
  fi
  if [ -f "$dst/d3d_rgb_teacher/student.keras" ]; then
    echo "kept: $dst/d3d_rgb_teacher"
  else
    python -m d3d_tf.train --flagfile="$src/d3d/flags.txt" --teacher="$dst/rgb_teacher" \
      --same_modality_teacher --model_dir="$dst/d3d_rgb_teacher"
  fi
  mkdir -p "$dst/eval"
  [ -e "$dst/eval/two_stream" ] || ln -s "$(realpath "$src/eval/two_stream")" "$dst/eval/two_stream"
  if [ ! -f "$dst/eval/d3d_flow/report.json" ]; then
    python -m d3d_tf.evaluate \
      --models="$dst/d3d_rgb_teacher/student.keras,$src/flow/student.keras" \
      --output_dir="$dst/eval/d3d_flow" --eval_files="$eval_files" --num_clips=2
  fi
  if [ ! -f "$dst/eval/rgb_teacher/report.json" ]; then  # The teacher's own test top-1.
    python -m d3d_tf.evaluate --models="$dst/rgb_teacher/student.keras" \
      --output_dir="$dst/eval/rgb_teacher" --eval_files="$eval_files" --num_clips=2
  fi
  if [ "$PROBE" = 1 ] && [ ! -f "$dst/probe/probe.json" ]; then
    models="$src/rgb,$src/d3d,$dst/d3d_rgb_teacher"
    extra=()
    if [ "$seed" = "$PROBE_TEACHERS_SEED" ]; then
      models="$models,$src/flow,$dst/rgb_teacher"
      extra=(--random_init)
    fi
    python -m d3d_tf.probe --model="$models" "${extra[@]}" --endpoints="$PROBE_ENDPOINTS" \
      --train_files="$records/train-*.tfrecord" --eval_files="$records/val-*.tfrecord" \
      --output_dir="$dst/probe" --overwrite
  fi
done
echo "Done: $OUT. Add it to the report: python -m d3d_tf.report ... --variant_roots=...,$OUT"
