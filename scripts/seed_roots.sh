# Shell functions shared by the scripts that extend a finished scripts/reproduce.sh root
# (warm_start.sh, teacher_control.sh): find and check its seeds, write the new root's
# variant.json. Sourced, not run.

# seeds_of ROOT: the numbers of ROOT's seed_* run directories, ascending, space-separated (none
# for a ROOT that does not exist).
seeds_of() {
  { find "$1" -maxdepth 1 -name 'seed_*' -printf '%f\n' 2>/dev/null || true; } | sed 's/seed_//' \
    | sort -n | tr '\n' ' '
}

# require_seed_files TOOL ROOT "SEEDS" PART...: exits 2, naming it, at the first ROOT/seed_k/PART
# that is missing (an unfinished seed), or when SEEDS is empty.
require_seed_files() {
  local tool=$1 root=$2 seeds=$3 seed part
  shift 3
  [ -n "$seeds" ] || {
    echo "$tool: $root has no seed_* runs (run scripts/reproduce.sh first)." >&2; exit 2; }
  for seed in $seeds; do
    for part in "$@"; do
      [ -f "$root/seed_$seed/$part" ] || {
        echo "$tool: $root/seed_$seed/$part is missing (an unfinished seed?)." >&2; exit 2; }
    done
  done
}

# write_variant OUT ROOT NAME_SUFFIX DATA_NOTE COMMAND: OUT/variant.json for a report root made
# from ROOT: ROOT's variant name + NAME_SUFFIX, its data flagfile + "; " + DATA_NOTE, COMMAND.
write_variant() {
  python - "$@" <<'PY'
import json, os, sys
out, root, suffix, note, command = sys.argv[1:]
meta = {}
if os.path.isfile(os.path.join(root, "variant.json")):
  with open(os.path.join(root, "variant.json")) as f:
    meta = json.load(f)
with open(os.path.join(out, "variant.json"), "w") as f:
  json.dump(dict(name=meta.get("name", "fair test") + suffix,
                 data_flagfile=f"{meta.get('data_flagfile', 'configs/synthetic_data.flags')}; "
                               f"{note}",
                 command=command), f, indent=2)
PY
}
