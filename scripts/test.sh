#!/usr/bin/env bash
# The README's test command: install d3d_tf with its test, beam, videoswin, onnx and litert
# extras (so the Beam, VideoSwin, ONNX and LiteRT tests run, not skip), then run the whole
# suite in TEST_WORKERS processes (default 2, CI's cores; pytest-xdist, one test file per
# process at a time). Much of a test's time is single-threaded Python (tracing the network,
# starting CLIs), so two processes finish in well under the time of one. TEST_WORKERS=0 runs
# in this process.
set -uo pipefail
cd "$(dirname "$0")/.."
python -m pip install -q --upgrade pip
python -m pip install -q -e ".[test,beam,videoswin,onnx,litert]" || exit 1
workers=${TEST_WORKERS:-2}
if [ "$workers" -gt 0 ]; then
  python -m pytest -q -n "$workers" --dist loadfile "$@"
else
  python -m pytest -q "$@"
fi
status=$?
if [ "$status" -eq 5 ]; then
  echo "pytest collected no tests: failing." >&2
  exit 1
fi
exit "$status"
