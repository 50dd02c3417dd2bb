"""The Beam runner (DirectRunner) writes what the local runner writes: the same shard bytes,
label map, failures and summary; a corrupt video is a failure, not a failed pipeline; a rerun
redoes only the missing shards. Needs the `beam` extra (CI installs it)."""

import csv
import os
import subprocess
import sys

import pytest

from tfrecords_tools import convert_lib
from tfrecords_tools import layouts

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _beam_pipeline():
  pytest.importorskip("apache_beam", reason="Apache Beam is not installed; the Beam runner "
                      "tests need the extra: pip install -e .[beam]")
  from tfrecords_tools import beam_pipeline  # pylint: disable=g-import-not-at-top
  return beam_pipeline


@pytest.fixture
def videos(tmp_path, sample_clips, write_moving_square):
  """Two real clips, three synthetic ones and a corrupt file, in three classes."""
  root = tmp_path / "videos"
  for name, key in [("cycling/bikes.mp4", "bikes"), ("phoning/carphone.mp4", "carphone")]:
    (root / name).parent.mkdir(parents=True, exist_ok=True)
    os.symlink(sample_clips[key], root / name)
  for i in range(3):
    write_moving_square(root / "square" / f"square{i}.mp4", seed=i)
  data = bytearray(open(sample_clips["bikes"], "rb").read())
  moov = data.find(b"moov")
  data[moov - 4:] = os.urandom(len(data) - moov + 4)  # A garbled index: nothing decodes.
  (root / "phoning" / "corrupt.mp4").write_bytes(bytes(data))
  return root


@pytest.mark.slow  # A Beam CLI subprocess (imports TensorFlow and Beam): ~20 s.
def test_beam_cli_with_flow_equals_local_runner(tmp_path, videos, run_cli, read_records,
                                                conversion_outputs):
  _beam_pipeline()
  options = convert_lib.EncodeOptions(short_side=32, max_frames=5, flow="dis")
  local = tmp_path / "local"
  convert_lib.convert(layouts.parse_folder(str(videos)), str(local), options, num_shards=2,
                      workers=1, show_progress=False)
  beam = tmp_path / "beam"
  result = run_cli("tfrecords_tools.build_tfrecords", f"--input={videos}", f"--output_dir={beam}",
                   "--runner=beam", "--beam_pipeline_options=--runner=DirectRunner",
                   "--flow=dis", "--short_side=32", "--max_frames=5", "--num_shards=2")
  assert result.returncode == 0, result.stderr
  # The counters, as DirectRunner reports them at the end.
  assert "converted=5, failed=1, frame_pairs=20, shards=2" in result.stderr

  files, summary = conversion_outputs(beam)
  assert sorted(files) == ["failures.csv", "label_map.txt", "train-00000-of-00002.tfrecord",
                           "train-00001-of-00002.tfrecord"]
  assert (files, summary) == conversion_outputs(local)
  assert (summary["converted"], summary["failed"], summary["frame_pairs"]) == (5, 1, 20)
  with open(beam / "failures.csv", newline="") as f:
    assert [os.path.basename(row["path"]) for row in csv.DictReader(f)] == ["corrupt.mp4"]
  records = {r.context["video/id"]: r for r in read_records(str(beam))}
  assert sorted(records) == ["cycling/bikes", "phoning/carphone", "square/square0",
                             "square/square1", "square/square2"]
  assert records["square/square0"].flow.shape == (4, 32, 64, 2)


def test_beam_without_flow_equals_local_and_reruns_only_missing_shards(tmp_path, videos,
                                                                      conversion_outputs):
  beam_pipeline = _beam_pipeline()
  options = convert_lib.EncodeOptions(short_side=32, max_frames=3, flow="none")
  local = tmp_path / "local"
  convert_lib.convert(layouts.parse_folder(str(videos)), str(local), options, num_shards=3,
                      workers=1, show_progress=False)
  beam = tmp_path / "beam"
  summary = beam_pipeline.convert(layouts.parse_folder(str(videos)), str(beam), options,
                                  num_shards=3, pipeline_args=["--runner=DirectRunner"])
  assert summary["beam_metrics"] == dict(converted=5, failed=1, frame_pairs=0, shards=3)
  assert conversion_outputs(beam) == conversion_outputs(local)

  # A crash that lost one shard: the rerun writes that shard alone, to the same bytes.
  os.remove(beam / "train-00001-of-00003.tfrecord")
  summary = beam_pipeline.convert(layouts.parse_folder(str(videos)), str(beam), options,
                                  num_shards=3)
  assert summary["resumed_shards"] == 2 and summary["beam_metrics"]["shards"] == 1
  files, rest = conversion_outputs(beam)
  expected_files, expected_rest = conversion_outputs(local)
  assert files == expected_files
  assert {k: v for k, v in rest.items() if k not in ("resumed_shards", "videos_this_run")} == {
      k: v for k, v in expected_rest.items() if k not in ("resumed_shards", "videos_this_run")}


def _encode_or_crash(task):
  """Stands in for a decoder that segfaults on one file (runs in the DoFn's child process)."""
  if task.item.path.endswith("crash.mp4"):
    os._exit(1)
  return convert_lib.encode_video(task)


def test_a_decoder_crash_fails_its_video_not_the_pipeline(tmp_path, write_moving_square):
  beam_pipeline = _beam_pipeline()
  root = tmp_path / "videos"
  for name in ["a.mp4", "crash.mp4", "b.mp4"]:
    write_moving_square(root / "square" / name, seed=len(name), n=3)
  out = tmp_path / "out"
  summary = beam_pipeline.convert(layouts.parse_folder(str(root)), str(out),
                                  convert_lib.EncodeOptions(short_side=32, flow="none"),
                                  encode=_encode_or_crash)
  assert summary["beam_metrics"] == dict(converted=2, failed=1, frame_pairs=0, shards=1)
  with open(out / "failures.csv", newline="") as f:
    assert [(os.path.basename(row["path"]), row["reason"]) for row in csv.DictReader(f)] == [
        ("crash.mp4", "the decoder crashed (worker process died)")]


def test_runner_beam_without_beam_installed_is_one_line_naming_the_extra(tmp_path, videos):
  # Blocks the import as an environment without the extra would; runs the real CLI module.
  code = ("import runpy, sys; sys.modules['apache_beam'] = None; "
          "runpy.run_module('tfrecords_tools.build_tfrecords', run_name='__main__')")
  env = dict(os.environ, PYTHONPATH=REPO_ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
  result = subprocess.run(
      [sys.executable, "-c", code, f"--input={videos}", f"--output_dir={tmp_path / 'out'}",
       "--runner=beam"], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120)
  assert result.returncode == 2
  assert result.stderr.strip().splitlines() == [
      "build_tfrecords: error: --runner=beam needs Apache Beam, which is not installed: "
      "pip install -e .[beam]"]
  assert not (tmp_path / "out").exists()


def test_beam_options_without_runner_beam_is_a_flag_error(tmp_path, videos, run_cli):
  result = run_cli("tfrecords_tools.build_tfrecords", f"--input={videos}",
                   f"--output_dir={tmp_path / 'out'}", "--beam_pipeline_options=--runner=X")
  assert result.returncode == 2
  assert result.stderr.strip().splitlines() == [
      "build_tfrecords: error: flags runner=local, beam_pipeline_options=--runner=X: "
      "--beam_pipeline_options only applies to --runner=beam: add --runner=beam, or drop the "
      "options"]
