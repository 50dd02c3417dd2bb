#!/usr/bin/env bash
# The warm-start arm of "When does D3D help?" (docs/BENCHMARK.md) on a finished
# scripts/reproduce.sh root: per seed, both arms start from that seed's trained RGB baseline and
# train STEPS more steps with the seed's own recipe (its flags.txt): `rgb` on the labelled clips
# (RGB continued), `d3d` distilled from the seed's flow teacher (D3D warm). Each seed is then
# evaluated as quickstart.sh does (two-stream and D3D + flow on the test split), so OUT is a
# report root: `python -m d3d_tf.report ... --variant_roots=OUT`.
#
# Usage: ROOT=runs/unlabelled bash scripts/warm_start.sh
# Environment: ROOT (required), OUT=$ROOT-warm, SEEDS (default: every seed_* of ROOT),
# STEPS=1000, PROBE=1 (the motion probe of the first seed into $OUT/probe; 0 skips it).
# Finished runs are kept on a rerun; delete OUT to start over.
set -euo pipefail
export D3D_TF_FRAME_OPS=${D3D_TF_FRAME_OPS:-2d}  # As quickstart.sh: the formulation its rows used.
cd "$(dirname "$0")/.."
case "${1:-}" in
  -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  "") ;;
  *) echo "warm_start.sh: no arguments (settings are environment variables; see --help)." >&2; exit 2 ;;
esac
ROOT=${ROOT:?warm_start.sh: set ROOT to a scripts/reproduce.sh root (see --help)}
OUT=${OUT:-$ROOT-warm}
STEPS=${STEPS:-1000}
PROBE=${PROBE:-1}
source scripts/seed_roots.sh
SEEDS=${SEEDS:-$(seeds_of "$ROOT")}
require_seed_files warm_start.sh "$ROOT" "$SEEDS" rgb/student.keras d3d/student.keras \
  flow/student.keras
records="$ROOT/data/records"
mkdir -p "$OUT"
write_variant "$OUT" "$ROOT" " + warm start" \
  "RGB and D3D both start from each seed's RGB baseline, +$STEPS steps" \
  "ROOT=$ROOT STEPS=$STEPS bash scripts/warm_start.sh"
for seed in $SEEDS; do
  src="$ROOT/seed_$seed" dst="$OUT/seed_$seed"
  echo; echo "##### warm start, seed $seed ($(date +%H:%M:%S)) #####"
  for stream in rgb d3d; do
    if [ -f "$dst/$stream/student.keras" ]; then
      echo "kept: $dst/$stream"
      continue
    fi
    # The seed's own recipe (teacher, unlabelled split, seed...), from its trained RGB network.
    python -m d3d_tf.train --flagfile="$src/$stream/flags.txt" --init_from="$src/rgb" \
      --model_dir="$dst/$stream" --train_steps="$STEPS" --checkpoint_every=$(( (STEPS + 1) / 2 ))
  done
  eval_files="$records/test-*.tfrecord"
  compgen -G "$eval_files" > /dev/null || eval_files="$records/val-*.tfrecord"
  for pair in "two_stream rgb" "d3d_flow d3d"; do
    read -r name student <<< "$pair"
    [ -f "$dst/eval/$name/report.json" ] && continue
    python -m d3d_tf.evaluate --models="$dst/$student/student.keras,$src/flow/student.keras" \
      --output_dir="$dst/eval/$name" --eval_files="$eval_files" --num_clips=2
  done
done
if [ "$PROBE" = 1 ] && [ ! -f "$OUT/probe/probe.json" ]; then
  first=${SEEDS%% *}
  echo; echo "##### motion probe of seed $first ($(date +%H:%M:%S)) #####"
  python -m d3d_tf.probe --model="$OUT/seed_$first/rgb,$OUT/seed_$first/d3d,$ROOT/seed_$first/flow" \
    --random_init --train_files="$records/train-*.tfrecord" \
    --eval_files="$records/val-*.tfrecord" --output_dir="$OUT/probe"
fi
echo "Done: $OUT. Add it to the report: python -m d3d_tf.report ... --variant_roots=...,$OUT"
