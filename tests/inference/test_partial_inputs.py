"""A damaged or cut-short video is used where it can be, and said so: predict and
extract_features keep the frames that decoded and write a warning."""

import csv
import os

import pytest

from d3d_tf.inference import features_config
from d3d_tf.inference import features_lib
from d3d_tf.models import ClipGeometry, S3DGBackbone, S3DGClassifier
from d3d_tf.video import stream
from tests.data import cut_videos


@pytest.fixture(scope="module")
def cut_video(tmp_path_factory):
  folder = tmp_path_factory.mktemp("videos")
  whole = cut_videos.write_mp4(folder / "whole.mp4", n=40)
  os.makedirs(folder / "in")
  cut = cut_videos.cut_before_last_packets(whole, folder / "in" / "cut.mp4", 3)
  return cut


def test_scan_counts_the_frames_a_cut_video_lost(cut_video):
  count, fps, report = stream.scan(cut_video)
  assert (count, fps) == (37, 25.0)
  assert report.frames_promised == 40 and report.frames_lost == 3
  assert report.describe().startswith("decoded 37 of 40 frames")


def test_windows_fill_the_report_once_exhausted(cut_video):
  report = stream.video_io.DecodeReport()
  windows = list(stream.iter_windows(cut_video, 8, report=report))
  assert len(windows) == 4 and report.frames_lost == 3


def test_extract_features_keeps_a_cut_video_and_warns(cut_video, tmp_path, capsys):
  model = S3DGClassifier(S3DGBackbone(depth_multiplier=0.125, final_endpoint="Mixed_3c"),
                         num_classes=2,
                         clip_geometry=ClipGeometry(num_frames=8, crop_size=32, labels=("a", "b")))
  model.save(str(tmp_path / "m.keras"))
  config = features_config.FeaturesConfig(
      videos=os.path.dirname(cut_video), model=str(tmp_path / "m.keras"),
      output_dir=str(tmp_path / "out"), quiet=False)
  counts = features_lib.extract(config)
  assert counts["done"] == 1 and counts["failed"] == 0
  with open(tmp_path / "out" / features_lib.MANIFEST, newline="", encoding="utf-8") as f:
    rows = list(csv.DictReader(f))
  assert [(r["video"], r["windows"], r["status"]) for r in rows] == [("cut.mp4", "4", "partial")]
  err = capsys.readouterr()
  assert "warning: cut.mp4: decoded 37 of 40 frames" in err.out + err.err
