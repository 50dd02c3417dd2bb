"""Inputs and outputs at URLs (`tf.io.gfile`): a conversion from and to ram:// writes what the
same conversion on local paths writes, for both runners, and resumes there; an s3:// path is
one line naming the scheme and what to do.

ram:// is TensorFlow's in-memory file system, standing in for gs:// (no network here). It lives
in one process, so the library runs in-process: the local runner with workers=1, the Beam one
on DirectRunner, whose per-video child process first copies its video into its own ram://
(`_encode_with_ram_mirror`), as every process sees the same bucket on gs://; the CLI runs in a
subprocess that fills its own ram:// from a local folder and copies the output back out.
"""

import os
import subprocess
import sys

import pytest

from d3d_tf.common import file_system as fs
from tfrecords_tools import convert_lib
from tfrecords_tools import layouts

# The local folder a child process mirrors into its ram:// (`_encode_with_ram_mirror`).
MIRROR_ENV = "D3D_TF_TEST_RAM_MIRROR"
OPTIONS = convert_lib.EncodeOptions(short_side=32, max_frames=3, flow="dis")


def _tf():
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  return tf


def copy_tree(source, target):
  """Copies a tree between file systems (local to ram:// and back); returns `target`."""
  gfile = _tf().io.gfile
  for folder, _, names in gfile.walk(source):
    relative = folder[len(source):].strip("/")
    destination = os.path.join(target, relative) if relative else target
    gfile.makedirs(destination)
    for name in names:
      gfile.copy(os.path.join(folder, name), os.path.join(destination, name), overwrite=True)
  return target


@pytest.fixture
def clips(tmp_path, sample_clips, write_moving_square):
  """A real clip, two synthetic ones and a corrupt file, locally and in ram://."""
  root = tmp_path / "videos"
  (root / "phoning").mkdir(parents=True)
  (root / "phoning" / "carphone.mp4").write_bytes(open(sample_clips["carphone"], "rb").read())
  (root / "phoning" / "corrupt.mp4").write_bytes(b"\0" * 4096)
  for i in range(2):
    write_moving_square(root / "square" / f"square{i}.mp4", seed=i, n=4)
  ram = copy_tree(str(root), f"ram://{tmp_path.name}/videos")
  yield str(root), ram
  _tf().io.gfile.rmtree(f"ram://{tmp_path.name}")


def test_local_runner_from_and_to_ram_equals_local_and_resumes(tmp_path, clips, monkeypatch,
                                                               conversion_outputs):
  local_in, ram_in = clips
  temp = tmp_path / "temp"  # Where the remote videos' local copies go; empty afterwards.
  temp.mkdir()
  monkeypatch.setattr("tempfile.tempdir", str(temp))
  local_out, ram_out = str(tmp_path / "out"), ram_in.replace("/videos", "/out")
  convert_lib.convert(layouts.parse_folder(local_in), local_out, OPTIONS, num_shards=2,
                      workers=1, show_progress=False)
  summary = convert_lib.convert(layouts.parse_folder(ram_in), ram_out, OPTIONS, num_shards=2,
                                workers=1, show_progress=False)
  assert (summary["converted"], summary["failed"], summary["frame_pairs"]) == (3, 1, 6)
  expected = conversion_outputs(local_out, local_in)
  assert conversion_outputs(ram_out, ram_in) == expected
  assert b"corrupt.mp4" in expected[0]["failures.csv"]
  assert not os.listdir(temp)
  assert not os.path.exists("ram:")  # Nothing written to a local folder named after the URL.

  # A lost shard is rewritten alone, to the same bytes.
  fs.remove(os.path.join(ram_out, "train-00001-of-00002.tfrecord"))
  summary = convert_lib.convert(layouts.parse_folder(ram_in), ram_out, OPTIONS, num_shards=2,
                                workers=1, show_progress=False)
  assert (summary["resumed_shards"], summary["converted"]) == (1, 3)
  assert conversion_outputs(ram_out, ram_in)[0] == expected[0]


def _encode_with_ram_mirror(task):
  """`encode_video` in the Beam runner's child process, after copying the task's video from the
  local mirror into this process's ram:// (the parent's is not visible here)."""
  ram_root, local_root = os.environ[MIRROR_ENV].split("|")
  gfile = _tf().io.gfile
  if task.item.path.startswith(ram_root) and not gfile.exists(task.item.path):
    gfile.makedirs(os.path.dirname(task.item.path))
    gfile.copy(local_root + task.item.path[len(ram_root):], task.item.path)
  return convert_lib.encode_video(task)


def test_beam_runner_from_and_to_ram_equals_local(tmp_path, clips, monkeypatch,
                                                  conversion_outputs):
  pytest.importorskip("apache_beam", reason="the Beam runner needs the extra: "
                      "pip install -e .[beam]")
  from tfrecords_tools import beam_pipeline  # pylint: disable=g-import-not-at-top
  local_in, ram_in = clips
  monkeypatch.setenv(MIRROR_ENV, f"{ram_in}|{local_in}")
  local_out, ram_out = str(tmp_path / "out"), ram_in.replace("/videos", "/out")
  convert_lib.convert(layouts.parse_folder(local_in), local_out, OPTIONS, num_shards=2,
                      workers=1, show_progress=False)
  summary = beam_pipeline.convert(layouts.parse_folder(ram_in), ram_out, OPTIONS, num_shards=2,
                                  pipeline_args=["--runner=DirectRunner"],
                                  encode=_encode_with_ram_mirror)
  assert summary["beam_metrics"] == dict(converted=3, failed=1, frame_pairs=6, shards=2)
  assert conversion_outputs(ram_out, ram_in) == conversion_outputs(local_out, local_in)


def test_annotation_files_read_from_ram_as_from_disk(tmp_path):
  """UCF-101 split files with a BOM and CRLF, HMDB-51's, and a Kinetics CSV parse alike at a
  URL, videos found nested, flat, in a label folder or missing."""
  local = tmp_path / "ann"
  for video in ("ApplyEyeMakeup/v_a.avi", "v_c.avi", "abseiling/abc_000003_000013.mp4",
                "brush_hair/h1.avi"):
    (local / "videos" / video).parent.mkdir(parents=True, exist_ok=True)
    (local / "videos" / video).write_bytes(b"x")
  (local / "brush_hair_test_split1.txt").write_text("h1.avi 1\nh2.avi 2\nh3.avi 0\n")
  (local / "classInd.txt").write_bytes("\ufeff1 ApplyEyeMakeup\r\n2 Archery\r\n".encode())
  (local / "trainlist01.txt").write_bytes(b"ApplyEyeMakeup/v_a.avi 1\r\nArchery/v_b.avi 2\r\n")
  (local / "testlist01.txt").write_bytes(b"archery/v_c.avi\r\n")
  (local / "k.csv").write_text("label,youtube_id,time_start,time_end,split\n"
                               "abseiling,abc,3,13,train\n,def,0,10,test\n")
  ram = copy_tree(str(local), f"ram://{tmp_path.name}/ann")
  try:
    for layout, name in (("ucf101", "trainlist01.txt"), ("kinetics", "k.csv"),
                         ("hmdb51", "brush_hair_test_split1.txt")):
      parsed = [layouts.load_dataset(layout, os.path.join(root, name),
                                     video_dir=os.path.join(root, "videos"))
                for root in (str(local), ram)]
      assert str(parsed[1]).replace(ram, "ROOT") == str(parsed[0]).replace(str(local), "ROOT")
  finally:
    _tf().io.gfile.rmtree(ram)


def test_a_scheme_tensorflow_lacks_is_one_line_naming_it_and_the_way_out():
  with pytest.raises(fs.UnsupportedFileSystemError) as e:
    layouts.load_dataset("folder", "s3://bucket/videos")
  message = str(e.value)
  assert "\n" not in message
  assert message.startswith("'s3://bucket/videos': TensorFlow has no file system for s3://")
  assert "gs://" in message and "mount" in message and "tensorflow-io" in message


# The CLI in a subprocess whose ram:// is filled from, and copied back to, local folders.
CLI_IN_RAM = """
import runpy, sys
from test_url_paths import copy_tree
local_in, local_out = sys.argv.pop(1), sys.argv.pop(1)
copy_tree(local_in, "ram://cli/videos")
try:
  runpy.run_module("tfrecords_tools.build_tfrecords", run_name="__main__")
finally:
  copy_tree("ram://cli/out", local_out)
"""


@pytest.mark.slow  # A CLI subprocess (imports TensorFlow): ~25 s.
def test_cli_from_and_to_ram_equals_local(tmp_path, clips, conversion_outputs):
  local_in, _ = clips
  local_out, copied_out = str(tmp_path / "out"), str(tmp_path / "copied")
  convert_lib.convert(layouts.parse_folder(local_in), local_out, OPTIONS, num_shards=2,
                      workers=1, show_progress=False)
  here = os.path.dirname(os.path.abspath(__file__))
  root = os.path.dirname(os.path.dirname(here))
  env = dict(os.environ, PYTHONPATH=os.pathsep.join(
      [root, here] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
  result = subprocess.run(
      [sys.executable, "-c", CLI_IN_RAM, local_in, copied_out, "--input=ram://cli/videos",
       "--output_dir=ram://cli/out", "--workers=1", "--flow=dis", "--short_side=32",
       "--max_frames=3", "--num_shards=2"], cwd=root, env=env, capture_output=True, text=True,
      timeout=300)
  assert result.returncode == 0, result.stderr
  assert "-> ram://cli/out" in result.stderr
  expected = conversion_outputs(local_out, local_in)
  assert conversion_outputs(copied_out, "ram://cli/videos") == expected


@pytest.mark.slow  # A CLI subprocess (imports TensorFlow): ~20 s.
def test_cli_with_an_s3_output_dir_fails_before_listing(tmp_path, run_cli):
  result = run_cli("tfrecords_tools.build_tfrecords", f"--input={tmp_path}",
                   "--output_dir=s3://bucket/records")
  assert result.returncode == 2
  lines = result.stderr.strip().splitlines()
  assert len(lines) == 1 and lines[0].startswith(
      "build_tfrecords: error: 's3://bucket/records': TensorFlow has no file system for s3://")
