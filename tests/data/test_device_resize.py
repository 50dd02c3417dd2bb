"""`train_dataset(resize_on_device=True)`: uint8 crop buffers resized by the model equal the
CPU pipeline's float clips (same seed: same frames, crops, scale jitter and flips)."""

import numpy as np
import tensorflow as tf

from d3d_tf.data import datasets, device_resize, records
from tests.data import records_fixture as rf

T, S = 4, 16
HEIGHT, WIDTH = 40, 56


def _random_flow_records(tmp_path, num_videos=3, num_frames=6):
  """Textured frames and random (not constant) quantized flow planes: every resized value of
  either modality depends on where it is sampled."""
  rng = np.random.default_rng(0)
  examples = []
  for k in range(num_videos):
    frames = rf.textured_frames(num_frames, HEIGHT, WIDTH, 2, 1, k)
    planes = rng.integers(0, 256, (num_frames - 1, HEIGHT, WIDTH, 2), dtype=np.uint8)
    examples.append(records.make_sequence_example(
        f"v{k}", k, f"v{k}", 25.0, HEIGHT, WIDTH, [rf.encode_jpeg(f) for f in frames],
        flow_x=[rf.encode_png(p[..., 0]) for p in planes],
        flow_y=[rf.encode_png(p[..., 1]) for p in planes], flow_algorithm="random"))
  return rf.write_records(str(tmp_path / "random_flow.tfrecord"), examples)


def _batches(pattern, n, **kw):
  ds = datasets.train_dataset(pattern, batch_size=4, num_frames=T, crop_size=S, with_flow=True,
                              seed=3, deterministic=True, shuffle_buffer=4, **kw)
  return list(ds.take(n))


def test_resized_buffers_equal_the_float_clips(tmp_path):
  pattern = _random_flow_records(tmp_path)
  as_float = _batches(pattern, 6)
  on_device = _batches(pattern, 6, resize_on_device=True)
  extents = []
  for (f, label_f), (u, label_u) in zip(as_float, on_device):
    np.testing.assert_array_equal(label_f, label_u)
    assert u["rgb"].dtype == tf.uint8 and u["rgb"].shape == (4, T, 2 * S, 2 * S, 3)
    assert u["flow"].dtype == tf.uint8 and u["flow"].shape == (4, T, 2 * S, 2 * S, 2)
    extents.append(u[device_resize.CROP_EXTENT].numpy())
    for key in ("rgb", "flow"):
      np.testing.assert_allclose(device_resize.model_input(u, key).numpy(), f[key].numpy(),
                                 atol=2e-5, rtol=0, err_msg=key)
  extents = np.concatenate(extents)
  # Compared: upscaled and downscaled crops, crops longer than 2S (kept as line pairs), flips.
  assert extents[:, :2].min() < S and extents[:, :2].max() > 2 * S
  assert 0 < extents[:, 2].sum() < len(extents)


def test_a_video_without_flow_planes_gets_zero_flow(tmp_path):
  pattern = rf.write_records(str(tmp_path / "one_frame.tfrecord"),
                             [rf.make_video_example("v", 0, num_frames=1, height=HEIGHT,
                                                    width=WIDTH)])
  (u, _), = _batches(pattern, 1, resize_on_device=True)
  np.testing.assert_array_equal(u[device_resize.CROP_EXTENT].numpy()[:, 3], 0)
  np.testing.assert_array_equal(device_resize.model_input(u, "flow").numpy(), 0.0)


def test_deterministic_with_a_seed(tmp_path):
  pattern = _random_flow_records(tmp_path)
  first, second = _batches(pattern, 3, resize_on_device=True), _batches(
      pattern, 3, resize_on_device=True)
  for (a, _), (b, _) in zip(first, second):
    for key in ("rgb", "flow", device_resize.CROP_EXTENT):
      np.testing.assert_array_equal(a[key].numpy(), b[key].numpy())


def test_resize_matches_tf_image_resize_on_lines_longer_than_twice_the_output():
  """A crop of 70 x 9 lines into 8 x 8: rows kept as pairs, columns upscaled whole."""
  crop = tf.constant(np.random.default_rng(1).integers(0, 256, (2, 70, 9, 3)), tf.uint8)
  buffer = device_resize.pack_crop(crop, 8)
  out = device_resize.resize_buffers(buffer[None], tf.constant([[70, 9, 0, 1]]), False)[0]
  expected = tf.image.resize(tf.cast(crop, tf.float32) * (2.0 / 255.0) - 1.0, [8, 8])
  np.testing.assert_allclose(out.numpy(), expected.numpy(), atol=1e-6)


def _pooling_model(channels, seed):
  import keras  # pylint: disable=g-import-not-at-top
  keras.utils.set_random_seed(seed)
  inputs = keras.Input([T, S, S, channels])
  x = keras.layers.Flatten()(inputs)
  return keras.Model(inputs, keras.layers.Dense(3)(x))


def test_the_distiller_resizes_student_and_teacher_inputs(tmp_path):
  """D3DDistiller gives the same student and teacher logits on the buffers as on float clips."""
  from d3d_tf.distill import D3DDistiller  # pylint: disable=g-import-not-at-top
  pattern = _random_flow_records(tmp_path)
  (f, _), = _batches(pattern, 1)
  (u, _), = _batches(pattern, 1, resize_on_device=True)
  distiller = D3DDistiller(_pooling_model(3, 0), _pooling_model(2, 1))
  np.testing.assert_allclose(distiller(u).numpy(), distiller(f).numpy(), atol=1e-4)
  np.testing.assert_allclose(distiller._teacher_logits(u).numpy(),  # pylint: disable=protected-access
                             distiller._teacher_logits(f).numpy(), atol=1e-4)


def test_train_resizes_on_device_by_default_only_with_an_accelerator():
  """--resize_on_device=auto keeps CPU-only training (the quickstart) on the CPU resize."""
  from d3d_tf.training import train_lib  # pylint: disable=g-import-not-at-top
  def config(**kw):
    return train_lib.TrainConfig(stream="rgb", train_files="x", model_dir="m", **kw)
  has_accelerator = bool(tf.config.list_logical_devices("GPU"))
  assert train_lib._resize_on_device(config()) == has_accelerator  # pylint: disable=protected-access
  assert train_lib._resize_on_device(config(resize_on_device="on"))  # pylint: disable=protected-access
  assert not train_lib._resize_on_device(config(uint8_clips=True))  # pylint: disable=protected-access
  with np.testing.assert_raises_regex(ValueError, "choose one"):
    train_lib.validate(config(uint8_clips=True, resize_on_device="on"))
