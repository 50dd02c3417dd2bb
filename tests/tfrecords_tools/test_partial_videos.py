"""Videos that decode only in part: a failure past `max_lost_fraction`, kept and counted below."""

import csv
import dataclasses
import json
import os

import pytest

from tests.data import cut_videos
from tfrecords_tools import convert_lib
from tfrecords_tools import layouts

OPTIONS = convert_lib.EncodeOptions(short_side=0, flow="none")


@pytest.fixture(scope="module")
def cut_dataset(tmp_path_factory):
  folder = tmp_path_factory.mktemp("videos")
  whole = cut_videos.write_mp4(folder / "whole.mp4", n=40)
  paths = {"whole": whole,
           "cut": cut_videos.cut_at_fraction(whole, folder / "cut.mp4", 0.6),
           "last": cut_videos.cut_before_last_packets(whole, folder / "last.mp4", 1)}
  items = [layouts.VideoItem(path, "a", "train", name) for name, path in paths.items()]
  return layouts.Dataset(items, ["a"]), paths


def _failures(output_dir):
  with open(os.path.join(output_dir, convert_lib.FAILURES_FILE), newline="") as f:
    return list(csv.reader(f))[1:]


def test_a_truncated_video_fails_and_one_losing_little_is_kept_and_counted(
    cut_dataset, tmp_path, read_records):
  dataset, paths = cut_dataset
  out = str(tmp_path / "out")
  summary = convert_lib.convert(dataset, out, OPTIONS, show_progress=False)
  ((path, reason),) = _failures(out)
  assert path == paths["cut"]
  assert reason.startswith("decoded ") and reason.endswith(" of 40 frames: the stream ends early")
  assert 10 <= int(reason.split()[1]) <= 30
  assert (summary["converted"], summary["failed_videos"]) == (2, 1)
  assert (summary["partial_videos"], summary["frames_lost"]) == (1, 1)
  assert summary["options"]["max_lost_fraction"] == 0.05
  with open(os.path.join(out, convert_lib.SUMMARY_FILE)) as f:
    assert json.load(f)["partial_videos"] == 1
  lengths = {record.context["video/id"]: len(record.frames) for record in read_records(out)}
  assert lengths == {"whole": 40, "last": 39}


def test_max_lost_fraction_sets_the_share_a_video_may_lose(cut_dataset, tmp_path):
  dataset, _ = cut_dataset
  strict = convert_lib.convert(dataset, str(tmp_path / "strict"),
                               dataclasses.replace(OPTIONS, max_lost_fraction=0.0),
                               show_progress=False)
  assert (strict["converted"], strict["partial_videos"]) == (1, 0)
  lenient = convert_lib.convert(dataset, str(tmp_path / "lenient"),
                                dataclasses.replace(OPTIONS, max_lost_fraction=0.9),
                                show_progress=False)
  assert (lenient["converted"], lenient["partial_videos"]) == (3, 2)
  assert lenient["frames_lost"] > 10
  with pytest.raises(ValueError, match=r"--max_lost_fraction=1.5: must be in \[0, 1\)"):
    convert_lib.convert(dataset, str(tmp_path / "bad"),
                        dataclasses.replace(OPTIONS, max_lost_fraction=1.5), show_progress=False)
