#!/usr/bin/env bash
# The longer synthetic experiment behind docs/REPRODUCTION.md: a larger synthetic dataset, longer
# training, several seeds (each seed trains its own flow teacher, RGB baseline and D3D student
# on the same data), the inference-cost benchmark on real clips, then the report.
#
# Usage: bash scripts/reproduce.sh [--fresh]
# Environment: SEEDS="1 2 3 4 5", STEPS=4000 (per model), TRAIN_PER_CLASS=60, ROOT=runs/reproduce.
# The data are configs/synthetic_data.flags' with TRAIN_PER_CLASS training clips per class and
# data seed 1 (the quickstart's data use seed 0).
# Finished seeds and stages are kept on a rerun (timing.json names the kept seeds); --fresh
# starts over.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=${ROOT:-runs/reproduce}
SEEDS=${SEEDS:-1 2 3 4 5}
STEPS=${STEPS:-4000}
TRAIN_PER_CLASS=${TRAIN_PER_CLASS:-60}
for arg in "$@"; do
  case $arg in
    --fresh) rm -rf "$ROOT" ;;
    -h|--help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "reproduce.sh: unknown argument '$arg'; the only option is --fresh." >&2; exit 2 ;;
  esac
done
mkdir -p "$ROOT"
start=$(date +%s)
kept_seeds=""  # Seeds finished by an earlier run: their time is that run's, not this one's.
for seed in $SEEDS; do
  echo; echo "##### seed $seed ($(date +%H:%M:%S)) #####"
  [ -f "$ROOT/seed_$seed/results.json" ] && kept_seeds="$kept_seeds $seed"
  RUN="$ROOT/seed_$seed" DATA="$ROOT/data" SEED="$seed" \
    DATA_FLAGS="--flagfile=configs/synthetic_data.flags --train_per_class=$TRAIN_PER_CLASS --seed=1" \
    TRAIN_FLAGS="--train_steps=$STEPS" bash scripts/quickstart.sh
done
echo; echo "##### inference cost on real clips ($(date +%H:%M:%S)) #####"
if [ -f "$ROOT/inference_cost.jsonl" ]; then
  echo "kept: $ROOT/inference_cost.jsonl exists"
else
  python benchmarks/inference_cost.py --output="$ROOT/inference_cost.jsonl"
fi
total=$(( $(date +%s) - start ))
python - "$ROOT/timing.json" "$total" "SEEDS='$SEEDS' STEPS=$STEPS TRAIN_PER_CLASS=$TRAIN_PER_CLASS bash scripts/reproduce.sh" "$kept_seeds" <<'PY'
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
python -m d3d_tf.report --quickstart_dir=runs/synthetic --seed_dirs="$ROOT/seed_*" \
  --inference_cost="$ROOT/inference_cost.jsonl" --output=docs/REPRODUCTION.md
echo "Done in ${total} s: docs/REPRODUCTION.md"
