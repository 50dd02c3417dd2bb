"""extract_features --runner=beam: the DirectRunner writes the local runner's files, byte for
byte, lists the same failures, and a rerun skips what is there."""

import csv
import importlib.util
import os

import pytest

from d3d_tf.inference import features_config
from d3d_tf.inference import features_lib
from d3d_tf.models import ClipGeometry, S3DGBackbone, S3DGClassifier
from tests.inference.conftest import write_video

pytestmark = pytest.mark.skipif(importlib.util.find_spec("apache_beam") is None,
                                reason="apache-beam missing")


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
  model = S3DGClassifier(S3DGBackbone(depth_multiplier=0.125, final_endpoint="Mixed_3c"),
                         num_classes=3,
                         clip_geometry=ClipGeometry(num_frames=4, stride=2, crop_size=32,
                                                    labels=("a", "b", "c")))
  path = str(tmp_path_factory.mktemp("model") / "student.keras")
  model.save(path)
  return path


def _rows(path):
  with open(path, newline="", encoding="utf-8") as f:
    return list(csv.DictReader(f))


def _files(root):
  return {os.path.relpath(p, root): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_direct_runner_writes_the_local_runs_files(model_path, tmp_path):
  videos = tmp_path / "videos"
  write_video(videos / "a" / "one.mkv", [40 * k for k in range(24)], seed=1)
  write_video(videos / "b" / "two.mp4", [40 * k for k in range(18)], seed=2)
  write_video(videos / "short.mkv", [40 * k for k in range(5)], seed=3)  # Under one window.
  (videos / "broken.mp4").write_bytes(b"not a video")
  common = dict(model=model_path, videos=str(videos), short_side=48, window_stride=6,
                batch_size=2, quiet=True)  # Local batches mix the two videos.
  local = features_lib.extract(features_config.FeaturesConfig(
      output_dir=str(tmp_path / "local"), **common))
  beam = features_lib.extract(features_config.FeaturesConfig(
      output_dir=str(tmp_path / "beam"), runner="beam",
      beam_pipeline_options="--runner=DirectRunner", **common))
  assert beam == local == {"done": 2, "existing": 0, "failed": 2, "windows": 3 + 2}
  local_files, beam_files = _files(tmp_path / "local"), _files(tmp_path / "beam")
  # Same names (no scratch left behind), same bytes: .npz, manifest.csv, failures.csv; the
  # kept flags differ in --runner only.
  assert sorted(beam_files) == sorted(local_files) == sorted(
      [os.path.join("a", "one.npz"), os.path.join("b", "two.npz"), "manifest.csv",
       "failures.csv", "flags.txt"])
  for name, data in local_files.items():
    if name != "flags.txt":
      assert beam_files[name] == data, name
  assert b"--runner=beam" in beam_files["flags.txt"]
  assert [(r["video"], r["windows"], r["status"]) for r in
          _rows(tmp_path / "beam" / "manifest.csv")] == [
              (os.path.join("a", "one.mkv"), "3", "done"),
              (os.path.join("b", "two.mp4"), "2", "done"),
              ("broken.mp4", "0", "failed"), ("short.mkv", "0", "failed")]

  (tmp_path / "beam" / "b" / "two.npz").unlink()  # As if killed before this video.
  again = features_lib.extract(features_config.FeaturesConfig(
      output_dir=str(tmp_path / "beam"), runner="beam",
      beam_pipeline_options="--runner=DirectRunner", **common))
  assert again == {"done": 1, "existing": 1, "failed": 2, "windows": 2}
  assert _files(tmp_path / "beam")[os.path.join("b", "two.npz")] == local_files[
      os.path.join("b", "two.npz")]
  assert {r["video"]: r["status"] for r in _rows(tmp_path / "beam" / "manifest.csv")}[
      os.path.join("a", "one.mkv")] == "existing"


def test_beam_options_need_the_beam_runner(model_path, tmp_path):
  config = features_config.FeaturesConfig(model=model_path, videos=str(tmp_path),
                                          output_dir=str(tmp_path / "out"),
                                          beam_pipeline_options="--runner=DirectRunner")
  with pytest.raises(ValueError, match="only applies to --runner=beam"):
    config.validate()
