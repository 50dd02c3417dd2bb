"""Evaluation's progress: videos counted as `run_views` meets them, the total from summary.json."""

import io
import json

import numpy as np
import tensorflow as tf

from d3d_tf.common import progress
from d3d_tf.evaluation import ensemble
from d3d_tf.evaluation import evaluate_lib


def _write_split(root, shards, summary):
  for name in shards:
    (root / name).write_bytes(b"")
  (root / "summary.json").write_text(json.dumps(summary))


def test_split_video_count_reads_whole_splits_from_summary(tmp_path):
  _write_split(tmp_path, ["val-00000-of-00002", "val-00001-of-00002", "train-00000-of-00001"],
               {"splits": {"val": {"shards": 2, "converted": 7, "videos": 8},
                           "train": {"shards": 1, "converted": 5}}})
  assert evaluate_lib.split_video_count(str(tmp_path / "val-*")) == 7
  assert evaluate_lib.split_video_count(str(tmp_path / "*-of-*")) == 12
  # One shard of two: the summary cannot say how many videos that is.
  assert evaluate_lib.split_video_count(str(tmp_path / "val-00000-*")) is None


def test_split_video_count_without_summary_is_unknown(tmp_path):
  (tmp_path / "val-00000-of-00001").write_bytes(b"")
  assert evaluate_lib.split_video_count(str(tmp_path / "val-*")) is None
  assert evaluate_lib.split_video_count(str(tmp_path / "nothing-*")) is None


def test_run_views_counts_each_video_once_across_batches():
  # 3 videos x 2 views, batches of 4: video 1's views straddle two batches.
  index = np.repeat(np.arange(3), 2)
  features = {"video_index": index, "video_id": [f"v{i}".encode() for i in index],
              "rgb": np.zeros((6, 1), np.float32)}
  ds = tf.data.Dataset.from_tensor_slices((features, index % 2)).batch(4)
  member = ensemble.Member("m.keras", None, "rgb")
  member._predict = lambda x: tf.zeros((tf.shape(x)[0], 2))  # pylint: disable=protected-access
  stream = io.StringIO()
  with progress.ProgressBar(total=3, unit="videos", desc="evaluating", stream=stream,
                            interval=0.0) as bar:
    out = ensemble.run_views([member], ds, bar)
  assert bar.count == 3 and out["num_views"].tolist() == [2, 2, 2]
  counts = [line.split()[1] for line in stream.getvalue().splitlines()]
  assert counts == ["0/3", "2/3", "3/3"]
  assert " videos/s | ETA " in stream.getvalue()
