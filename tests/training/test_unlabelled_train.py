"""`--unlabelled_train_files`: records whose labels the student never sees, mixed
into the training stream; only with a teacher; the flow teacher reads both sets with labels."""

import collections
import os
import subprocess
import sys

import numpy as np
import pytest

from d3d_tf.training import train_config, train_lib
from d3d_tf.data import datasets
from tests.data import records_fixture as rf
from tests.training import tiny_data

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _write(directory, split, labels, seed):
  examples = [rf.make_video_example(f"{split}{k:03d}", label, num_frames=8, height=32, width=32,
                                    seed=seed + k) for k, label in enumerate(labels)]
  return rf.write_records(os.path.join(directory, f"{split}-00000.tfrecord"), examples)


@pytest.fixture(scope="module")
def mixed_dir(tmp_path_factory):
  """4 labelled records (classes 0, 1) and 8 'unlabelled' ones, all stored as class 2."""
  directory = str(tmp_path_factory.mktemp("mixed"))
  _write(directory, "train", [0, 1, 0, 1], 0)
  _write(directory, "unlabelled", [2] * 8, 100)
  return directory


def _labels(directory, seed, batches=30):
  ds = datasets.train_dataset(
      os.path.join(directory, "train-*.tfrecord"), batch_size=4, num_frames=4, crop_size=16,
      shuffle_buffer=4, seed=seed, deterministic=True,
      unlabelled_pattern=os.path.join(directory, "unlabelled-*.tfrecord"))
  return np.concatenate([label.numpy() for _, label in ds.take(batches)])


def test_unlabelled_records_arrive_as_minus_one_in_proportion(mixed_dir):
  labels = _labels(mixed_dir, seed=3)
  counts = collections.Counter(labels.tolist())
  assert set(counts) == {0, 1, datasets.UNLABELLED}  # Class 2 (stored) never shows.
  assert 0.55 < counts[datasets.UNLABELLED] / len(labels) < 0.8  # 8 of 12 records: 2/3.
  # Seeded and deterministic: the same stream again; another seed mixes otherwise.
  np.testing.assert_array_equal(labels, _labels(mixed_dir, seed=3))
  assert not np.array_equal(labels, _labels(mixed_dir, seed=4))


def test_only_a_run_with_a_teacher_takes_unlabelled_files(tmp_path):
  for stream in ("rgb", "flow"):
    config = train_lib.TrainConfig(stream=stream, train_files="a-*", model_dir=str(tmp_path),
                                   unlabelled_train_files="u-*")
    with pytest.raises(ValueError, match=f"--unlabelled_train_files needs --stream=d3d.*"
                                         f"--stream={stream}"):
      train_config.validate(config)
  train_config.validate(train_lib.TrainConfig(
      stream="d3d", teacher="t", train_files="a-*", model_dir=str(tmp_path),
      unlabelled_train_files="u-*"))


@pytest.mark.slow
def test_flow_on_both_sets_then_d3d_with_the_labels_hidden(tmp_path):
  data = tiny_data.write_tiny_records(str(tmp_path / "data"), num_videos=6)
  _write(data, "unlabelled", [0, 1, 2, 0, 1, 2], 200)
  train, unlabelled = (os.path.join(data, f"{s}-*.tfrecord") for s in ("train", "unlabelled"))
  flow_dir = str(tmp_path / "flow")
  # The teacher sees the unlabelled split's labels: comma-separated globs.
  train_lib.train(train_lib.TrainConfig(**tiny_data.tiny_flags(
      data, flow_dir, "flow", train_files=f"{train},{unlabelled}", train_steps=1, eval_files=""),
      verbose=0))
  d3d_dir = tmp_path / "d3d"
  metrics = train_lib.train(train_lib.TrainConfig(**tiny_data.tiny_flags(
      data, str(d3d_dir), "d3d", teacher=flow_dir, unlabelled_train_files=unlabelled,
      train_steps=1, eval_files=""), verbose=0))
  assert metrics["step"] == 1 and np.isfinite(metrics["loss"]) and metrics["distill_loss"] > 0
  assert f"--unlabelled_train_files={unlabelled}" in (d3d_dir / "flags.txt").read_text()
  with pytest.raises(FileNotFoundError, match="--unlabelled_train_files"):
    train_lib.train(train_lib.TrainConfig(**tiny_data.tiny_flags(
        data, str(tmp_path / "none"), "d3d", teacher=flow_dir,
        unlabelled_train_files=str(tmp_path / "nothing-*")), verbose=0))


def test_the_cli_rejects_unlabelled_files_without_a_teacher_in_one_line(tmp_path):
  result = subprocess.run(
      [sys.executable, "-m", "d3d_tf.train", "--stream=rgb", "--train_files=a-*",
       f"--model_dir={tmp_path}", "--unlabelled_train_files=u-*"],
      cwd=REPO, env=dict(os.environ, PYTHONPATH=REPO), capture_output=True, text=True,
      timeout=120)
  lines = result.stderr.strip().splitlines()
  assert result.returncode == 2 and len(lines) == 1, result.stderr
  assert "--unlabelled_train_files needs --stream=d3d" in lines[0]
