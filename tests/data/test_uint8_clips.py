"""`train_dataset(uint8_clips=True)`: fixed-size crops without resize, uint8 out, the float
clips once normalised (`processors.to_unit_on_device`), RGB and flow on one crop and flip."""

import numpy as np
import pytest
import tensorflow as tf

from d3d_tf.data import builders, crop_boxes, datasets, processors, records
from tests.data import records_fixture as rf
from tests.data.test_datasets import estimate_shift

T, S = 8, 48
DX, DY = 3, -2
BOUND = records.DEFAULT_FLOW_BOUND


def _records(tmp_path, height, width, num_videos=3, num_frames=12):
  path = str(tmp_path / f"videos_{height}x{width}.tfrecord")
  examples = [rf.make_video_example(f"v{k}", k, num_frames=num_frames, height=height,
                                    width=width, dx=DX, dy=DY, seed=k)
              for k in range(num_videos)]
  return rf.write_records(path, examples)


def _clips(pattern, n=2, **kw):
  ds = datasets.train_dataset(pattern, batch_size=3, num_frames=T, crop_size=S, with_flow=True,
                              seed=5, deterministic=True, **kw)
  return [tf.nest.map_structure(lambda v: v.numpy(), item) for item in ds.take(n)]


def test_uint8_clips_normalised_equal_the_float_clips(tmp_path):
  """Frames of exactly S x S: both pipelines take the whole frame (same frames and flips), the
  float one resizes it to its own size; after `to_unit_on_device` the clips agree."""
  pattern = _records(tmp_path, S, S)
  as_float = _clips(pattern, min_area=1.0, aspect_ratio_range=(1.0, 1.0))
  as_uint8 = _clips(pattern, uint8_clips=True)
  flips = []
  for (f, label_f), (u, label_u) in zip(as_float, as_uint8):
    np.testing.assert_array_equal(label_f, label_u)
    assert u["rgb"].dtype == np.uint8 and u["flow"].dtype == np.uint8
    assert u["rgb"].shape == (3, T, S, S, 3) and u["flow"].shape == (3, T, S, S, 2)
    for key in ("rgb", "flow"):
      unit = processors.to_unit_on_device(tf.constant(u[key])).numpy()
      np.testing.assert_allclose(unit, f[key], atol=1e-6, err_msg=key)
    flips.extend(f["flow"][..., 0].mean(axis=(1, 2, 3)) < 0)
  assert any(flips) and not all(flips)  # Both flip states were compared.


def test_uint8_rgb_and_flow_share_the_crop_and_flip(tmp_path):
  """48 x 64 frames, 48-pixel crops: the quantized flow is the stored motion (x as 255 - q when
  flipped) and RGB frame t + 1 is frame t moved by that motion, unscaled (no resize)."""
  pattern = _records(tmp_path, 48, 64)
  qx = records.quantize_flow(np.array([DX, DY], np.float32), BOUND)
  flips = []
  for features, _ in _clips(pattern, uint8_clips=True):
    for flow, rgb in zip(features["flow"], features["rgb"]):
      flipped = flow[0, 0, 0, 0] == 255 - qx[0]
      flips.append(flipped)
      np.testing.assert_array_equal(flow[..., 0], 255 - qx[0] if flipped else qx[0])
      np.testing.assert_array_equal(flow[..., 1], qx[1])
      shift = estimate_shift(rgb[0].mean(-1).astype(np.float32),
                             rgb[1].mean(-1).astype(np.float32))
      np.testing.assert_allclose(shift, [-DX if flipped else DX, DY], atol=0.3)
  assert any(flips) and not all(flips)


def test_uint8_crops_move_over_the_frame(tmp_path):
  """The crop position is random per clip: 48-pixel crops of 48 x 64 frames start at
  different x, so clips of one video differ."""
  pattern = _records(tmp_path, 48, 64, num_videos=1)
  ds = datasets.train_dataset(pattern, batch_size=8, num_frames=T, crop_size=S, seed=1,
                              uint8_clips=True, flip=False)
  rgb = next(iter(ds))[0]["rgb"].numpy()
  first_frames = {rgb[i, 0].tobytes() for i in range(8)}
  assert len(first_frames) > 2


def test_frames_smaller_than_the_crop_name_the_fix(tmp_path):
  """Refused when the dataset is built, with the converter flag that fixes it."""
  pattern = _records(tmp_path, 40, 64, num_videos=1)
  with pytest.raises(ValueError, match=r"short side of 40 px.*--short_side >= 48"):
    datasets.train_dataset(pattern, batch_size=1, num_frames=T, crop_size=S, seed=0,
                           uint8_clips=True)


def test_in_graph_check_names_the_fix():
  """Records past the first of a shard meet the same refusal inside the graph."""
  with pytest.raises(tf.errors.InvalidArgumentError, match="--short_side >= 48"):
    crop_boxes.random_fixed_crop_params(tf.constant(40), tf.constant(64), S, seed=[0, 1])


def test_one_frame_video_has_the_quantized_zero_flow(tmp_path):
  path = rf.write_records(str(tmp_path / "one.tfrecord"), [
      rf.make_video_example("one", 0, num_frames=1, height=S, width=64, dx=DX, dy=DY)])
  features = _clips(path, n=1, uint8_clips=True)[0][0]
  assert features["flow"].dtype == np.uint8
  assert np.all(features["flow"] == records.quantize_flow(np.zeros(2, np.float32), BOUND)[0])


def test_float_flow_sources_are_refused():
  planes = builders.Planes(decode=lambda: tf.zeros([2, S, S, 2]), scale=BOUND)
  with pytest.raises(ValueError, match="quantized"):
    builders.modality_views(planes, tf.constant([[0.0, 0.0, 1.0, 1.0]]), 1, tf.constant(False),
                            S, True, tf.constant(2), uint8_clips=True)
