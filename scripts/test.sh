#!/usr/bin/env bash
# The README's test command: install d3d_tf with its test, beam and videoswin extras (so the
# Beam and VideoSwin tests run, not skip), then run the whole suite.
set -uo pipefail
cd "$(dirname "$0")/.."
python -m pip install -q --upgrade pip
python -m pip install -q -e ".[test,beam,videoswin]" || exit 1
python -m pytest -q "$@"
status=$?
if [ "$status" -eq 5 ]; then
  echo "pytest collected no tests: failing." >&2
  exit 1
fi
exit "$status"
