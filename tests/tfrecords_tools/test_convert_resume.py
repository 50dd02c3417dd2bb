"""Crash safety: a conversion killed with SIGKILL and rerun equals an uninterrupted one, byte
for byte, and the rerun only redoes the shards that were not finished."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tfrecords_tools import convert_lib
from tfrecords_tools import layouts

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NUM_VIDEOS = 8
FLAGS = ["--flow=dis", "--short_side=64", "--max_frames=12", f"--num_shards={NUM_VIDEOS}",
         "--noflow_timing"]


def _shards(folder):
  return {name: open(os.path.join(folder, name), "rb").read()
          for name in sorted(os.listdir(folder)) if name.endswith(".tfrecord")}


def _make_videos(root, sample_clips):
  sources = [sample_clips["bikes"], sample_clips["carphone"]]
  for i in range(NUM_VIDEOS):
    path = root / f"class{i % 3}" / f"clip{i}.mp4"
    path.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(sources[i % 2], path)


@pytest.mark.slow  # Two subprocesses that import TensorFlow: ~15 s.
def test_killed_conversion_resumes_to_identical_shards(tmp_path, sample_clips, run_cli):
  videos = tmp_path / "videos"
  _make_videos(videos, sample_clips)

  # Reference: one uninterrupted run, in this process, with 2 workers (the killed run uses 1:
  # the bytes must not depend on it).
  reference = tmp_path / "reference"
  options = convert_lib.EncodeOptions(short_side=64, max_frames=12, flow="dis",
                                      flow_timing=False)
  convert_lib.convert(layouts.parse_folder(str(videos)), str(reference), options,
                      num_shards=NUM_VIDEOS, workers=2, show_progress=False)
  expected = _shards(reference)
  assert len(expected) == NUM_VIDEOS

  out = tmp_path / "out"
  env = dict(os.environ, PYTHONPATH=REPO_ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
  command = [sys.executable, "-m", "tfrecords_tools.build_tfrecords", f"--input={videos}",
             f"--output_dir={out}", "--workers=1"] + FLAGS
  process = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True)
  try:
    deadline = time.monotonic() + 120
    while not (out.exists() and _shards(out)) and time.monotonic() < deadline:
      assert process.poll() is None, "the conversion ended before it could be interrupted"
      time.sleep(0.01)
    os.killpg(process.pid, signal.SIGKILL)
  finally:
    process.wait()
  finished_before_kill = _shards(out)
  assert 1 <= len(finished_before_kill) < NUM_VIDEOS
  # What was finished is already final: complete shards are never rewritten later.
  for name, data in finished_before_kill.items():
    assert data == expected[name]

  result = run_cli("tfrecords_tools.build_tfrecords", f"--input={videos}", f"--output_dir={out}",
                   "--workers=1", *FLAGS)
  assert result.returncode == 0, result.stderr
  assert _shards(out) == expected
  summary = json.loads((out / "summary.json").read_text())
  assert summary["resumed_shards"] == len(finished_before_kill)
  assert summary["converted"] == NUM_VIDEOS
  assert summary["videos_this_run"] == NUM_VIDEOS - len(finished_before_kill)
  assert not [name for name in os.listdir(out / ".converter") if name.endswith(".partial")]

  # A third run finds everything done and converts nothing.
  summary = convert_lib.convert(layouts.parse_folder(str(videos)), str(out), options,
                                num_shards=NUM_VIDEOS, show_progress=False)
  assert summary["videos_this_run"] == 0 and summary["converted"] == NUM_VIDEOS
  assert _shards(out) == expected
