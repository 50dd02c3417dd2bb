"""Tests of the TFRecord pipelines: shapes, RGB/flow alignment, sampling, determinism, errors."""

import os
import subprocess
import sys

import cv2
import numpy as np
import pytest
import tensorflow as tf

from d3d_tf.data import datasets
from d3d_tf.data import host_memory
from d3d_tf.data import records
from d3d_tf.data import shards as shards_lib
from tests.data import records_fixture as rf

T, S = 8, 48
DX, DY = 3, -2  # Known motion of the synthetic videos, pixels per frame.
BOUND = records.DEFAULT_FLOW_BOUND


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
  directory = str(tmp_path_factory.mktemp("records"))
  paths = rf.write_shards(directory, num_shards=2, videos_per_shard=3, num_frames=12,
                          dx=DX, dy=DY)
  return directory, paths


def _pattern(shards):
  return os.path.join(shards[0], "*.tfrecord")


def _take(ds, n):
  return [tf.nest.map_structure(lambda x: x.numpy(), item) for item in ds.take(n)]


def estimate_shift(a, b, search=10, margin=10, iterations=20):
  """(sx, sy) such that b(x, y) ~= a(x - sx, y - sy): integer search, then Gauss-Newton."""
  a = a.astype(np.float64)
  b = b.astype(np.float64)
  h, w = a.shape
  inner = (slice(margin, h - margin), slice(margin, w - margin))

  def warp(s):
    m = np.float64([[1, 0, s[0]], [0, 1, s[1]]])
    return cv2.warpAffine(a, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)

  _, best = min((np.mean((warp((sx, sy))[inner] - b[inner]) ** 2), (sx, sy))
                for sx in range(-search, search + 1) for sy in range(-search, search + 1))
  s = np.float64(best)
  for _ in range(iterations):
    warped = warp(s)
    gy, gx = np.gradient(warped)
    g = np.stack([-gx[inner].ravel(), -gy[inner].ravel()], 1)
    ds = np.linalg.lstsq(g, (b - warped)[inner].ravel(), rcond=None)[0]
    s = s + ds
    if np.abs(ds).max() < 1e-4:
      break
  return s


def test_train_shapes_dtypes_ranges(shards):
  ds = datasets.train_dataset(_pattern(shards), batch_size=4, num_frames=T, crop_size=S,
                              with_flow=True, seed=0)
  features, label = _take(ds, 1)[0]
  assert set(features) == {"rgb", "flow"}
  assert features["rgb"].shape == (4, T, S, S, 3) and features["rgb"].dtype == np.float32
  assert features["flow"].shape == (4, T, S, S, 2) and features["flow"].dtype == np.float32
  assert label.shape == (4,) and label.dtype == np.int32
  assert -1.0 <= features["rgb"].min() < features["rgb"].max() <= 1.0
  assert np.abs(features["flow"]).max() < 1.0  # A few pixels of motion / bound 20.
  assert set(label.tolist()) <= set(range(6))
  assert ds.element_spec[0]["rgb"].shape.as_list() == [4, T, S, S, 3]


def test_rgb_only_and_flow_only(shards):
  rgb, _ = _take(datasets.train_dataset(_pattern(shards), batch_size=2, num_frames=T,
                                        crop_size=S), 1)[0]  # No seed: fresh randomness.
  assert set(rgb) == {"rgb"}
  flow, _ = _take(datasets.train_dataset(_pattern(shards), batch_size=2, num_frames=T,
                                         crop_size=S, with_rgb=False, with_flow=True,
                                         seed=0), 1)[0]
  assert set(flow) == {"flow"} and flow["flow"].shape == (2, T, S, S, 2)


def test_flow_matches_known_motion_full_frame_crop(shards):
  # min_area 1 with the frame's own aspect: the crop is the whole 48x64 frame.
  ds = datasets.train_dataset(_pattern(shards), batch_size=6, num_frames=T, crop_size=S,
                              with_flow=True, seed=1, deterministic=True, min_area=1.0,
                              aspect_ratio_range=(64 / 48, 64 / 48))
  qx, qy = rf.quantized_flow_value(DX), rf.quantized_flow_value(DY)
  flips = []
  for features, _ in _take(ds, 2):
    for flow, rgb in zip(features["flow"] * BOUND, features["rgb"]):
      flipped = flow[..., 0].mean() < 0
      flips.append(flipped)
      expected_x = qx * S / 64 * (-1 if flipped else 1)
      np.testing.assert_allclose(flow[..., 0], expected_x, rtol=1e-5)
      np.testing.assert_allclose(flow[..., 1], qy * S / 48, rtol=1e-5)
      shift = estimate_shift(rgb[0].mean(-1), rgb[1].mean(-1))
      np.testing.assert_allclose(shift, [DX * S / 64 * (-1 if flipped else 1), DY * S / 48],
                                 atol=0.25)
  assert any(flips) and not all(flips)


def test_flow_and_rgb_share_random_crop_and_flip(shards):
  """Property: after the random crop + resize and flip, flow = known motion x resize factor
  (x negated when flipped), and RGB frame t+1 is frame t shifted by exactly that flow."""
  ds = datasets.train_dataset(_pattern(shards), batch_size=6, num_frames=T, crop_size=S,
                              with_flow=True, seed=2, deterministic=True, min_area=0.3)
  qx, qy = rf.quantized_flow_value(DX), rf.quantized_flow_value(DY)
  scales, flips = set(), []
  for features, _ in _take(ds, 2):
    for flow, rgb in zip(features["flow"] * BOUND, features["rgb"]):
      # Constant motion stays constant after crop, resize and flip.
      assert flow[..., 0].std() < 1e-4 and flow[..., 1].std() < 1e-4
      fx, fy = float(flow[..., 0].mean()), float(flow[..., 1].mean())
      scale_x, scale_y = fx / qx, fy / qy
      flips.append(scale_x < 0)
      # The implied crop is between the whole frame and sqrt(0.3 / aspect) of it.
      assert S / 64 - 1e-4 <= abs(scale_x) <= S / 64 / 0.4 and S / 48 - 1e-4 <= scale_y
      scales.add((round(abs(scale_x), 3), round(scale_y, 3)))
      for t in range(0, T - 1, 3):
        shift = estimate_shift(rgb[t].mean(-1), rgb[t + 1].mean(-1))
        true_motion = np.array([DX * scale_x, DY * scale_y])
        tolerance = 0.3 + 0.03 * np.abs(true_motion)
        assert np.all(np.abs(shift - true_motion) <= tolerance), (shift, true_motion)
        # And the flow itself predicts the RGB motion (up to quantization).
        assert np.all(np.abs(shift - [fx, fy]) <= tolerance + 0.05), (shift, fx, fy)
  assert len(scales) > 4  # Crops vary across clips.
  assert any(flips) and not all(flips)


def test_jpeg_flow_planes_give_the_png_clips(tmp_path):
  """Records storing flow as JPEG (`--flow_format=jpeg`) yield the clips of PNG records: the
  same frames, crop and flip, and the same flow (constant planes survive JPEG exactly)."""
  out = {}
  for flow_format in ("png", "jpeg"):
    directory = tmp_path / flow_format
    directory.mkdir()
    rf.write_shards(str(directory), num_shards=1, videos_per_shard=3, num_frames=12, dx=DX,
                    dy=DY, flow_format=flow_format)
    for mode, ds in (
        ("train", datasets.train_dataset(str(directory / "*.tfrecord"), batch_size=3,
                                         num_frames=T, crop_size=S, with_flow=True, seed=4,
                                         deterministic=True, min_area=0.3)),
        ("eval", datasets.eval_dataset(str(directory / "*.tfrecord"), batch_size=3,
                                       num_frames=T, crop_size=S, with_flow=True))):
      out[flow_format, mode] = _take(ds, 1)[0][0]
  for mode in ("train", "eval"):
    np.testing.assert_array_equal(out["png", mode]["rgb"], out["jpeg", mode]["rgb"])
    np.testing.assert_allclose(out["png", mode]["flow"], out["jpeg", mode]["flow"], atol=1e-6)


def _video_record(tmp_path, name, num_frames, with_flow=True, frames=None):
  path = str(tmp_path / f"{name}.tfrecord")
  example = rf.make_video_example(name, 0, num_frames=num_frames, with_flow=with_flow,
                                  dx=DX, dy=DY, frames=frames)
  return rf.write_records(path, [example])


def test_short_video_loops_and_one_frame_video_has_zero_flow(tmp_path):
  short = _video_record(tmp_path, "short", 3)
  ds = datasets.train_dataset(short, batch_size=1, num_frames=T, crop_size=S, with_flow=True,
                              seed=0, min_area=1.0, aspect_ratio_range=(64 / 48, 64 / 48))
  features, _ = _take(ds, 1)[0]
  rgb, flow = features["rgb"][0], features["flow"][0]
  # 3 frames, offset 0: indices 0 1 2 0 1 2 0 1.
  for t in range(T - 3):
    np.testing.assert_array_equal(rgb[t], rgb[t + 3])
  # Frame 2 (the last) reuses the flow of pair 1 -> 2.
  np.testing.assert_array_equal(flow[2], flow[1])
  one = _video_record(tmp_path, "one", 1)
  features, _ = _take(datasets.train_dataset(one, batch_size=2, num_frames=T, crop_size=S,
                                             with_flow=True, seed=0), 1)[0]
  assert np.all(features["flow"] == 0.0)
  assert np.all(features["rgb"] == features["rgb"][:, :1])


def test_stride_sampling_on_pipeline(tmp_path):
  # Frame t has gray level 10 t: the sampled indices can be read back from the pixels.
  frames = np.stack([np.full((48, 64, 3), 10 * t, np.uint8) for t in range(20)])
  path = _video_record(tmp_path, "levels", 20, with_flow=False, frames=frames)
  ds = datasets.train_dataset(path, batch_size=1, num_frames=4, stride=3, crop_size=16,
                              seed=5, flip=False)
  for features, _ in _take(ds, 5):
    levels = np.round((features["rgb"][0].mean(axis=(1, 2, 3)) + 1) * 127.5 / 10)
    offset = levels[0]
    assert 0 <= offset <= 20 - 10
    np.testing.assert_array_equal(levels, offset + np.arange(4) * 3)


def test_deterministic_mode_repeats_batches(shards):
  def build(seed):
    return datasets.train_dataset(_pattern(shards), batch_size=2, num_frames=4, crop_size=16,
                                  with_flow=True, seed=seed, deterministic=True)
  first = _take(build(7), 3)
  for x, y in zip(tf.nest.flatten(first), tf.nest.flatten(_take(build(7), 3))):
    np.testing.assert_array_equal(x, y)
  other = _take(build(8), 3)
  assert any(not np.array_equal(a[0]["rgb"], b[0]["rgb"]) for a, b in zip(first, other))


def test_builds_under_a_global_seed_of_zero(shards):
  # Tensor seeds in Dataset.shuffle fail once tf.random.set_seed(0) ran; seeds must be ints.
  tf.random.set_seed(0)
  try:
    ds = datasets.train_dataset(_pattern(shards), batch_size=2, num_frames=4, crop_size=16,
                                seed=0, deterministic=True)
    assert _take(ds, 1)[0][0]["rgb"].shape == (2, 4, 16, 16, 3)
  finally:
    tf.random.set_seed(None)


def test_epochs_reshuffle_and_one_pass(shards, tmp_path):
  ds = datasets.train_dataset(_pattern(shards), batch_size=1, num_frames=T, crop_size=S,
                              seed=3, deterministic=True, repeat=False)
  labels = [int(label[0]) for _, label in _take(ds, 100)]
  assert sorted(labels) == list(range(6))
  rf.write_shards(str(tmp_path), num_shards=5, videos_per_shard=1, num_frames=4,
                  with_flow=False)
  ds = datasets.train_dataset(str(tmp_path / "*.tfrecord"), batch_size=5, num_frames=4,
                              crop_size=16, seed=3, deterministic=True, shuffle_buffer=1)
  epochs = [label.tolist() for _, label in _take(ds, 3)]
  assert all(sorted(e) == list(range(5)) for e in epochs)  # No record shuffle: whole epochs.
  assert len({tuple(e) for e in epochs}) > 1  # Files reshuffled every epoch.


def test_input_context_shards_by_file(shards):
  context = tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=1,
                                       num_replicas_in_sync=2)
  ds = datasets.train_dataset(_pattern(shards), batch_size=1, num_frames=T, crop_size=S,
                              seed=0, repeat=False, input_context=context)
  assert sorted(int(label[0]) for _, label in _take(ds, 100)) == [3, 4, 5]


def test_distributed_train_dataset(shards):
  strategy = tf.distribute.OneDeviceStrategy("/cpu:0")
  dist = datasets.distributed_train_dataset(strategy, 4, file_pattern=_pattern(shards),
                                            num_frames=T, crop_size=S, seed=0)
  features, label = next(iter(dist))
  assert features["rgb"].shape == (4, T, S, S, 3) and label.shape == (4,)


def test_eval_views_count_and_clip_major_order(tmp_path):
  # Gray level 8 t + x: a view's clip shows in its mean level, its crop in its x position.
  x = np.arange(64)[None, :, None]
  frames = np.stack([np.broadcast_to(8 * t + x, (48, 64, 3)) for t in range(12)])
  path = _video_record(tmp_path, "ramp", 12, with_flow=False, frames=frames.astype(np.uint8))
  rf.write_records(path, [
      rf.make_video_example("ramp", 4, frames=frames.astype(np.uint8), with_flow=False),
      rf.make_video_example("tex", 5, num_frames=12, with_flow=False)])
  ds = datasets.eval_dataset(path, num_clips=2, num_crops=3, num_frames=4, crop_size=16,
                             crop_fraction=0.5)
  batches = _take(ds, 10)
  assert len(batches) == 2  # batch_size defaults to the 6 views of one video.
  features, label = batches[0]
  assert features["rgb"].shape == (6, 4, 16, 16, 3)
  assert features["view_index"].tolist() == list(range(6))
  assert features["video_index"].tolist() == [0] * 6
  assert features["video_id"].tolist() == [b"ramp"] * 6 and label.tolist() == [4] * 6
  assert batches[1][0]["video_index"].tolist() == [1] * 6 and batches[1][1].tolist() == [5] * 6
  level = (features["rgb"][:, 0].mean(axis=(1, 2, 3)) + 1) * 127.5
  # Clips start at frames 0 and 8 (max offset 12 - 4); 24-px crops start at x = 0, 20, 40.
  expected = [8 * f + x0 + 11.5 for f in (0, 8) for x0 in (0, 20, 40)]
  np.testing.assert_allclose(level, expected, atol=2.5)


def test_eval_flow_and_one_crop(shards):
  ds = datasets.eval_dataset(_pattern(shards), num_clips=4, num_frames=T, crop_size=S,
                             with_flow=True, batch_size=8)
  batches = _take(ds, 10)
  assert sum(b[1].shape[0] for b in batches) == 6 * 4
  features = batches[0][0]
  assert features["flow"].shape == (8, T, S, S, 2)
  assert features["video_index"].tolist() == [0, 0, 0, 0, 1, 1, 1, 1]
  side = round(48 * 0.875)
  np.testing.assert_allclose(features["flow"][..., 0] * BOUND,
                             rf.quantized_flow_value(DX) * S / side, rtol=1e-5)


def test_full_video_mode(shards):
  ds = datasets.eval_dataset(_pattern(shards), num_clips=0, num_frames=4, crop_size=S,
                             with_flow=True)
  batches = _take(ds, 10)
  assert len(batches) == 6
  features, label = batches[0]
  assert features["rgb"].shape == (1, 12, S, S, 3) and features["flow"].shape == (1, 12, S, S, 2)
  looped = _take(datasets.full_video_dataset(_pattern(shards), min_frames=20, crop_size=S), 1)
  rgb = looped[0][0]["rgb"]
  assert rgb.shape == (1, 20, S, S, 3)
  np.testing.assert_array_equal(rgb[0, 12:], rgb[0, :8])


def _damage(path, out, mode):
  data = bytearray(open(path, "rb").read())
  if mode == "truncate":
    data = data[:len(data) * 2 // 3]
  else:  # Flip bytes inside the second record's payload: a CRC mismatch.
    first = int.from_bytes(data[:8], "little") + 16
    data[first + 100] ^= 0xFF
  open(out, "wb").write(bytes(data))
  return out


@pytest.mark.parametrize("mode", ["truncate", "bitflip"])
def test_damaged_shard_error_names_file(shards, tmp_path, mode):
  bad = _damage(shards[1][0], str(tmp_path / f"{mode}-bad.tfrecord"), mode)
  good = shards[1][1]
  ds = datasets.train_dataset([bad, good], batch_size=1, num_frames=T, crop_size=S,
                              seed=0, repeat=False)
  with pytest.raises(tf.errors.InvalidArgumentError, match=f"{mode}-bad.tfrecord"):
    _take(ds, 100)


@pytest.mark.parametrize("mode", ["truncate", "bitflip"])
def test_damaged_shard_ignored_and_counted(shards, tmp_path, mode):
  bad = _damage(shards[1][0], str(tmp_path / f"{mode}-bad.tfrecord"), mode)
  counter = datasets.SkipCounter()
  ds = datasets.train_dataset([bad, shards[1][1]], batch_size=1, num_frames=T, crop_size=S,
                              seed=0, repeat=False, ignore_errors=True, skip_counter=counter)
  assert not hasattr(ds, "skip_counter")  # The caller's counter is the one that counts.
  labels = sorted(int(label[0]) for _, label in _take(ds, 100))
  # The good shard whole; of the bad one, only the records before the damage.
  assert labels[-3:] == [3, 4, 5] and len(labels) in (4, 5)
  assert counter.damaged_shards == 1 and counter.bad_records == 0
  assert counter.events[0][1].endswith(f"{mode}-bad.tfrecord")


def test_bad_record_content_named_or_skipped(shards, tmp_path):
  path = str(tmp_path / "content.tfrecord")
  with tf.io.TFRecordWriter(path) as writer:
    writer.write(rf.make_video_example("ok", 1, num_frames=12).SerializeToString())
    writer.write(b"not a sequence example")
    bad_jpeg = rf.make_video_example("ok", 2, num_frames=12)
    bad_jpeg.feature_lists.feature_list[records.RGB_JPEG].feature[0].bytes_list.value[0] = (
        b"\xff\xd8garbage")
    writer.write(bad_jpeg.SerializeToString())
  ds = datasets.train_dataset(path, batch_size=1, num_frames=T, crop_size=S, seed=0,
                              repeat=False, shuffle_buffer=1, deterministic=True)
  with pytest.raises(tf.errors.InvalidArgumentError, match="content.tfrecord:1"):
    _take(ds, 100)
  counter = datasets.SkipCounter()
  ds = datasets.train_dataset(path, batch_size=1, num_frames=T, crop_size=S, seed=0,
                              repeat=False, ignore_errors=True, skip_counter=counter)
  labels = [int(label[0]) for _, label in _take(ds, 100)]
  assert labels == [1]
  assert counter.bad_records == 2 and counter.damaged_shards == 0
  assert sorted(name for _, name in counter.events) == [path + ":1", path + ":2"]


def test_missing_flow_planes_is_an_error(tmp_path):
  path = _video_record(tmp_path, "noflow", 12, with_flow=False)
  ds = datasets.train_dataset(path, batch_size=1, num_frames=T, crop_size=S, with_flow=True,
                              seed=0, repeat=False)
  with pytest.raises(tf.errors.InvalidArgumentError, match="noflow.tfrecord:0"):
    _take(ds, 1)


def test_no_files_is_a_clear_error(tmp_path):
  with pytest.raises(ValueError, match="No files match"):
    datasets.train_dataset(str(tmp_path / "*.tfrecord"), batch_size=1)


def test_local_shards_read_unbuffered_remote_buffered():
  assert int(shards_lib._read_buffer(tf.constant("/data/train-00000.tfrecord"))) == 0
  assert int(shards_lib._read_buffer(tf.constant("gs://bucket/train-00000.tfrecord"))) == (
      shards_lib._READ_BUFFER_BYTES)


def test_pooled_allocator_requested_unless_the_environment_decides(monkeypatch):
  monkeypatch.setenv(host_memory.ALLOCATOR_ENV, "false")
  host_memory.request_pooled_allocator()
  assert os.environ[host_memory.ALLOCATOR_ENV] == "false"
  monkeypatch.delenv(host_memory.ALLOCATOR_ENV)
  host_memory.request_pooled_allocator()
  assert os.environ[host_memory.ALLOCATOR_ENV] == "true"


def test_requesting_pooled_host_memory_before_the_first_op_works_and_import_alone_does_not():
  # TensorFlow reads the switch at its first op: the CLIs ask before it; an import never does.
  code = ("import os, tensorflow as tf; import d3d_tf.data; "
          "from d3d_tf.data import host_memory; "
          "print(host_memory.ALLOCATOR_ENV in os.environ); "
          "host_memory.request_pooled_allocator(); tf.ones([2]); "
          "print(host_memory.pooled_allocator_active())")
  env = {k: v for k, v in os.environ.items() if k != host_memory.ALLOCATOR_ENV}
  root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                       check=True, cwd=root)
  assert out.stdout.strip().splitlines()[-2] == "False"
  assert out.stdout.strip().splitlines()[-1] == "True"
