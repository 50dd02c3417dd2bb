"""The synthetic motion benchmark: reproducible, no class in a single frame, class in the flow."""

import dataclasses
import io
import os
import re

import cv2
import numpy as np
import pytest

from d3d_tf.data import label_map as label_map_lib
from d3d_tf.video import video_io
from tfrecords_tools import synthetic

NUM_CLASSES = len(synthetic.CLASSES)
CHANCE = 1.0 / NUM_CLASSES


@pytest.fixture(scope="module")
def small_benchmark(tmp_path_factory, read_records):
  """10 train and 5 val clips per class through the real converter (DIS flow): ~10 s."""
  root = tmp_path_factory.mktemp("synthetic")
  specs = synthetic.clip_specs(seed=3, counts={"train": 10, "val": 5}, size=64, min_length=16,
                               max_length=16)
  synthetic.write_videos(str(root / "videos"), specs, workers=2)
  summary = synthetic.convert_clips(str(root / "videos"), str(root / "records"), size=64,
                                    workers=2)
  assert summary["converted"] == len(specs) and summary["failed"] == 0
  by_split = {"train": [], "val": []}
  for name in sorted(os.listdir(root / "records")):
    if name.endswith(".tfrecord"):
      by_split[name.split("-")[0]].extend(read_records(str(root / "records" / name)))
  return root, by_split


def test_same_seed_gives_identical_clips():
  spec = synthetic.ClipSpec(seed=7, split="train", class_index=4, index=2)
  first, second = synthetic.render_clip(spec), synthetic.render_clip(spec)
  np.testing.assert_array_equal(first, second)
  assert 16 <= len(first) <= 24 and first.shape[1:] == (64, 64, 3)
  other = synthetic.render_clip(synthetic.ClipSpec(seed=8, split="train", class_index=4,
                                                   index=2))
  assert not np.array_equal(first[:8], other[:8])


def test_written_clips_decode_the_same_whatever_was_encoded_before(tmp_path):
  # Lossy x264 made a clip's pixels depend on the clips encoded before it in the process.
  specs = synthetic.clip_specs(seed=0, counts={"test": 2}, size=64, min_length=16,
                               max_length=16, clutter=False, actor_scale=2.0, speed=2.0)
  forward = synthetic.write_videos(str(tmp_path / "forward"), specs)
  backward = synthetic.write_videos(str(tmp_path / "backward"), specs[::-1])[::-1]
  for spec, a, b in zip(specs, forward, backward):
    frames = video_io.read_video(a)[0]
    np.testing.assert_array_equal(frames, video_io.read_video(b)[0], err_msg=a)
    # Only the 4:2:0 chroma subsampling is lost.
    assert np.abs(frames.astype(int) - synthetic.render_clip(spec)).mean() < 5, a


def test_rendering_reports_clips_done_with_rate_and_eta(tmp_path):
  specs = synthetic.clip_specs(seed=0, counts={"test": 1}, size=32, min_length=2, max_length=2,
                               clutter=False)[:3]
  stream = io.StringIO()
  synthetic.write_videos(str(tmp_path / "videos"), specs, stream=stream)
  lines = stream.getvalue().splitlines()
  assert lines[0].startswith("rendering 0/3 clips 0% | ")
  assert re.match(r"^rendering 3/3 clips 100% \| \d+\.\d\d clips/s \| ETA \d\d:\d\d \| ",
                  lines[-1]), lines


def test_layout_and_shared_label_map(small_benchmark):
  root, by_split = small_benchmark
  names = label_map_lib.read_label_map(str(root / "records" / "label_map.txt"))
  assert names == sorted(synthetic.CLASSES)
  assert len(by_split["train"]) == 10 * NUM_CLASSES and len(by_split["val"]) == 5 * NUM_CLASSES
  assert os.path.isfile(root / "videos" / "val" / "expand" / "expand_0004.mp4")
  for record in by_split["train"] + by_split["val"]:
    assert names[record.context["video/label/index"]] == record.context["video/label/name"]
    assert record.frames.shape[1:] == (64, 64, 3)
    assert record.flow.shape == (len(record.frames) - 1, 64, 64, 2)


def _frame_features(records):
  """Every frame, shrunk to 16x16, as a row of pixels; with its clip's label."""
  rows, labels = [], []
  for record in records:
    for frame in record.frames:
      rows.append(cv2.resize(frame, (16, 16), interpolation=cv2.INTER_AREA).ravel())
      labels.append(record.context["video/label/index"])
  return np.asarray(rows, np.float32), np.asarray(labels)


def _softmax_regression(x, y, steps=300, learning_rate=0.5, l2=1e-3):
  """Multinomial logistic regression by full-batch gradient descent; returns a predictor."""
  mean, std = x.mean(0), x.std(0) + 1e-6
  x = (x - mean) / std
  weights = np.zeros((x.shape[1], NUM_CLASSES), np.float32)
  bias = np.zeros(NUM_CLASSES, np.float32)
  targets = np.eye(NUM_CLASSES, dtype=np.float32)[y]
  for _ in range(steps):
    logits = x @ weights + bias
    probs = np.exp(logits - logits.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    grad = (probs - targets) / len(x)
    weights -= learning_rate * (x.T @ grad + l2 * weights)
    bias -= learning_rate * grad.sum(0)
  return lambda z: np.argmax(((z - mean) / std) @ weights + bias, axis=1)


def test_a_single_frame_carries_no_class(small_benchmark):
  _, by_split = small_benchmark
  x_train, y_train = _frame_features(by_split["train"])
  x_val, y_val = _frame_features(by_split["val"])
  predict = _softmax_regression(x_train, y_train)
  # The classifier can fit the training frames, so it is not too weak to find a cue...
  assert (predict(x_train) == y_train).mean() > 0.6
  # ...yet on new clips it is at chance: appearance says nothing about the class.
  assert abs((predict(x_val) == y_val).mean() - CHANCE) < 0.1


def _flow_statistics(record):
  """Per clip: mean flow (x, y), its spread over time (shaking), divergence and curl."""
  flow = record.flow.astype(np.float32) * (40.0 / 255) - 20.0
  flow -= np.median(flow, axis=(1, 2), keepdims=True)  # Camera shake moves everything.
  dx, dy = flow[..., 0], flow[..., 1]
  # Central differences that wrap around, like the scene.
  d_dx = lambda a: (np.roll(a, -1, axis=2) - np.roll(a, 1, axis=2)) / 2
  d_dy = lambda a: (np.roll(a, -1, axis=1) - np.roll(a, 1, axis=1)) / 2
  divergence, curl = d_dx(dx) + d_dy(dy), d_dx(dy) - d_dy(dx)
  speed = np.hypot(dx, dy)
  moving = speed > np.percentile(speed, 80, axis=(1, 2), keepdims=True)
  mean_x, mean_y = dx.mean(axis=(1, 2)), dy.mean(axis=(1, 2))
  # Mean over the moving pixels of each pair (none move in a still pair), median over pairs.
  on_moving = lambda field: np.median(
      [f[m].mean() if m.any() else 0.0 for f, m in zip(field, moving)])
  return np.array([mean_x.mean(), mean_y.mean(), mean_x.std(), mean_y.std(),
                   on_moving(divergence), on_moving(curl)])


def test_flow_statistics_separate_the_classes(small_benchmark):
  _, by_split = small_benchmark
  features = {split: np.stack([_flow_statistics(r) for r in records])
              for split, records in by_split.items()}
  labels = {split: np.array([r.context["video/label/index"] for r in records])
            for split, records in by_split.items()}
  mean, std = features["train"].mean(0), features["train"].std(0) + 1e-9
  train, val = (features["train"] - mean) / std, (features["val"] - mean) / std
  centroids = np.stack([train[labels["train"] == c].mean(0) for c in range(NUM_CLASSES)])
  predicted = np.argmin(((val[:, None] - centroids[None]) ** 2).sum(-1), axis=1)
  assert (predicted == labels["val"]).mean() > 4 * CHANCE


def test_noclutter_keeps_only_the_actor_moving():
  """--noclutter: no distractors, shake or grain, so pixels away from the actor stay still."""
  def still_fraction(clutter):
    frames = synthetic.render_clip(synthetic.ClipSpec(seed=5, split="train", class_index=0,
                                                      index=1, clutter=clutter))
    change = np.abs(np.diff(frames.astype(np.float32), axis=0)).max(axis=-1)
    return float(np.mean(change < 6))  # Sensor noise alone (sigma 1) rarely moves a pixel 6.
  assert still_fraction(False) > 0.8
  assert still_fraction(True) < 0.6
  specs = synthetic.clip_specs(1, {"train": 1}, 64, 16, 16, clutter=False)
  assert all(not spec.clutter for spec in specs)


def test_actor_scale_enlarges_the_moving_region():
  """actor_scale=2 doubles the actor's radius: several times more pixels change per frame."""
  def moving_fraction(actor_scale):
    fractions = []
    for index in range(4):
      frames = synthetic.render_clip(synthetic.ClipSpec(
          seed=5, split="train", class_index=0, index=index, clutter=False,
          actor_scale=actor_scale))
      change = np.abs(np.diff(frames.astype(np.float32), axis=0)).max(axis=-1)
      fractions.append(np.mean(change >= 6))
    return float(np.mean(fractions))
  assert moving_fraction(2.0) > 2.0 * moving_fraction(1.0)


@pytest.mark.parametrize("class_name", ["move_right", "rotate_ccw", "expand", "shake_vertical"])
def test_speed_plays_the_same_motion_faster(class_name):
  """speed=2 is the motion of speed=1 sampled at every other frame, for every kind of class."""
  def motion(speed, length):
    rng = np.random.default_rng(11)  # Same draws: same direction, rate, phase and start.
    return synthetic._actor_motion(rng, class_name, length, unit=1.0, speed=speed)
  fast = motion(2.0, 8)
  slow = motion(1.0, 16)
  for fast_part, slow_part in zip(fast, slow):
    np.testing.assert_allclose(fast_part, slow_part[::2], atol=1e-9)


def test_speed_one_renders_the_original_clip():
  spec = synthetic.ClipSpec(seed=2, split="val", class_index=6, index=0, clutter=False)
  np.testing.assert_array_equal(synthetic.render_clip(spec),
                                synthetic.render_clip(dataclasses.replace(spec, speed=1.0)))
  faster = synthetic.render_clip(dataclasses.replace(spec, speed=2.0))
  assert faster.shape == synthetic.render_clip(spec).shape
  np.testing.assert_array_equal(faster[0], synthetic.render_clip(spec)[0])  # Same start.
  assert not np.array_equal(faster[1:], synthetic.render_clip(spec)[1:])


def test_clip_specs_pass_actor_scale_and_speed():
  specs = synthetic.clip_specs(1, {"train": 2, "test": 1}, 64, 16, 16, clutter=False,
                               actor_scale=2.0, speed=3.0)
  assert len(specs) == 3 * NUM_CLASSES
  assert {(s.actor_scale, s.speed) for s in specs} == {(2.0, 3.0)}
  assert {s.split for s in specs} == {"train", "test"}
