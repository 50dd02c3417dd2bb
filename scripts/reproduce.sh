#!/usr/bin/env bash
# The longer synthetic experiment behind docs/REPRODUCTION.md: a larger synthetic dataset, longer
# training, several seeds (each seed trains its own flow teacher, RGB baseline and D3D student
# on the same data), the inference-cost benchmark on real clips, then the report.
#
# Usage: bash scripts/reproduce.sh [--fresh]
# Environment: SEEDS="1 2 3 4 5", STEPS=4000 (per model), TRAIN_PER_CLASS=60, DATA_SEED=1,
# ROOT=runs/reproduce, DATA_FLAGFILE=configs/synthetic_data.flags. The data are DATA_FLAGFILE's
# with TRAIN_PER_CLASS training clips per class and data seed DATA_SEED (the quickstart's use 0);
# STEPS, TRAIN_PER_CLASS or DATA_SEED set to '' keep the configs' values (the quickstart recipe).
# Another DATA_FLAGFILE runs a variant (docs/BENCHMARK.md, "When does D3D help?"), e.g.
#   DATA_FLAGFILE=configs/synthetic_shortcut_data.flags ROOT=runs/shortcut STEPS= \
#     TRAIN_PER_CLASS= DATA_SEED= bash scripts/reproduce.sh
# which writes $ROOT/variant.json and, with PROBE=1, the motion probe of seed ${SEEDS%% *} in
# $ROOT/probe; it leaves out the inference-cost benchmark and docs/REPRODUCTION.md, and prints
# the report command that adds it to the "When does D3D help?" section. A variant whose data have
# an unlabelled split (configs/synthetic_unlabelled_data.flags) trains as quickstart.sh says.
# The default run's report has a "When does D3D help?" row for $ROOT, plus one for each of
# VARIANT_ROOTS (comma-separated roots of variant runs, or docs/variants/*.json).
# FLOW_TRAIN_FLAGS, RGB_TRAIN_FLAGS, D3D_TRAIN_FLAGS reach each stream's training (quickstart.sh).
# Finished seeds and stages are kept on a rerun (timing.json names the kept seeds); --fresh
# starts over.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=${ROOT:-runs/reproduce}
SEEDS=${SEEDS:-1 2 3 4 5}
STEPS=${STEPS-4000}
TRAIN_PER_CLASS=${TRAIN_PER_CLASS-60}
DATA_SEED=${DATA_SEED-1}
DEFAULT_DATA=configs/synthetic_data.flags
DATA_FLAGFILE=${DATA_FLAGFILE:-$DEFAULT_DATA}
PROBE=${PROBE:-0}
if [ ! -f "$DATA_FLAGFILE" ]; then
  echo "reproduce.sh: DATA_FLAGFILE=$DATA_FLAGFILE: no such file (see configs/)." >&2
  exit 2
fi
for arg in "$@"; do
  case $arg in
    --fresh) rm -rf "$ROOT" ;;
    -h|--help) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "reproduce.sh: unknown argument '$arg'; the only option is --fresh." >&2; exit 2 ;;
  esac
done
mkdir -p "$ROOT"
start=$(date +%s)
data_flags="--flagfile=$DATA_FLAGFILE"
[ -n "$TRAIN_PER_CLASS" ] && data_flags="$data_flags --train_per_class=$TRAIN_PER_CLASS"
[ -n "$DATA_SEED" ] && data_flags="$data_flags --seed=$DATA_SEED"
train_flags=""
[ -n "$STEPS" ] && train_flags="--train_steps=$STEPS"
command="SEEDS='$SEEDS' STEPS=$STEPS TRAIN_PER_CLASS=$TRAIN_PER_CLASS bash scripts/reproduce.sh"
for stream in FLOW RGB D3D; do  # Per-stream flags of scripts/quickstart.sh, if any.
  var="${stream}_TRAIN_FLAGS"
  [ -n "${!var:-}" ] && command="$var='${!var}' $command"
done
if [ "$DATA_FLAGFILE" != "$DEFAULT_DATA" ]; then
  command="DATA_FLAGFILE=$DATA_FLAGFILE ROOT=$ROOT SEEDS='$SEEDS' STEPS=$STEPS"
  command="$command TRAIN_PER_CLASS=$TRAIN_PER_CLASS DATA_SEED=$DATA_SEED bash scripts/reproduce.sh"
  for stream in FLOW RGB D3D; do
    var="${stream}_TRAIN_FLAGS"
    [ -n "${!var:-}" ] && command="$var='${!var}' $command"
  done
  python - "$ROOT/variant.json" "$DATA_FLAGFILE" "$data_flags" "$train_flags" "$command" <<'PY'
import json, os, sys
path, flagfile, data_flags, train_flags, command = sys.argv[1:]
name = os.path.basename(flagfile).replace("synthetic_", "").replace("_data.flags", "")
with open(path, "w") as f:
  json.dump(dict(name=name, data_flagfile=flagfile, data_flags=data_flags,
                 train_flags=train_flags, command=command), f, indent=2)
PY
fi
write_timing() {
python - "$ROOT/timing.json" "$total" "$command" "$kept_seeds" <<'PY'
import json, os, sys
path, total, command, kept = sys.argv[1:]
timing = dict(command=command, seconds=int(total),
              load_average_at_end=[round(x, 2) for x in os.getloadavg()],
              seeds_kept=[int(s) for s in kept.split()])
if timing["seeds_kept"] and os.path.isfile(path):
  with open(path) as f:
    timing["earlier"] = json.load(f)  # The run that trained the kept seeds.
with open(path, "w") as f:
  json.dump(timing, f, indent=2)
PY
}
kept_seeds=""  # Seeds finished by an earlier run: their time is that run's, not this one's.
for seed in $SEEDS; do
  echo; echo "##### seed $seed ($(date +%H:%M:%S)) #####"
  [ -f "$ROOT/seed_$seed/results.json" ] && kept_seeds="$kept_seeds $seed"
  RUN="$ROOT/seed_$seed" DATA="$ROOT/data" SEED="$seed" \
    DATA_FLAGS="$data_flags" TRAIN_FLAGS="$train_flags" bash scripts/quickstart.sh
done
if [ "$PROBE" = 1 ]; then
  first=${SEEDS%% *}
  echo; echo "##### motion probe of seed $first ($(date +%H:%M:%S)) #####"
  run="$ROOT/seed_$first"
  python -m d3d_tf.probe --model="$run/rgb,$run/d3d,$run/flow" --random_init \
    --train_files="$ROOT/data/records/train-*.tfrecord" \
    --eval_files="$ROOT/data/records/val-*.tfrecord" --output_dir="$ROOT/probe"
fi
if [ "$DATA_FLAGFILE" != "$DEFAULT_DATA" ]; then
  total=$(( $(date +%s) - start ))
  write_timing
  echo "Done in ${total} s. Add it to the report's \"When does D3D help?\" section:"
  echo "  python -m d3d_tf.report ... --variant_roots=runs/reproduce,$ROOT"
  exit 0
fi
echo; echo "##### inference cost on real clips ($(date +%H:%M:%S)) #####"
if [ -f "$ROOT/inference_cost.jsonl" ]; then
  echo "kept: $ROOT/inference_cost.jsonl exists"
else
  python benchmarks/inference_cost.py --output="$ROOT/inference_cost.jsonl"
fi
total=$(( $(date +%s) - start ))
write_timing
python -m d3d_tf.report --quickstart_dir=runs/synthetic --seed_dirs="$ROOT/seed_*" \
  --inference_cost="$ROOT/inference_cost.jsonl" --output=docs/REPRODUCTION.md \
  --variant_roots="$ROOT${VARIANT_ROOTS:+,$VARIANT_ROOTS}"
echo "Done in ${total} s: docs/REPRODUCTION.md"
