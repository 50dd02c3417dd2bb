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
  # The pipelines' op seeds combine with TF's global seed, which a test run earlier in this
  # process may have set: fix it, so the crops (and the paddings they need) are these ones.
  tf.random.set_seed(7)
  pattern = _random_flow_records(tmp_path)
  as_float = _batches(pattern, 6)
  on_device = _batches(pattern, 6, resize_on_device=True)
  scales, shapes = [], set()
  for (f, label_f), (u, label_u) in zip(as_float, on_device):
    np.testing.assert_array_equal(label_f, label_u)
    assert u["rgb"].dtype == tf.uint8 and u["flow"].dtype == tf.uint8
    assert u["rgb"].shape[2] <= 2 * S and u["rgb"].shape[3] <= 2 * S
    assert u["rgb"].shape[2:4] == u["flow"].shape[2:4]  # One crop for both.
    shapes.add(tuple(u["rgb"].shape))
    scales.append(u[device_resize.FLOW_SCALE].numpy())
    for key in ("rgb", "flow"):
      np.testing.assert_allclose(device_resize.model_input(u, key).numpy(), f[key].numpy(),
                                 atol=1e-6, rtol=0, err_msg=key)
  # Compared: batches padded to different sizes; upscaled crops (factor > 1), crops longer
  # than 2S (kept as line pairs: factor < 1/2); both flips (x factor negative or positive).
  scales = np.concatenate(scales)
  assert len(shapes) > 1
  assert np.abs(scales).max() > 1 and np.abs(scales).min() < 0.5
  assert (scales[:, 0] < 0).any() and (scales[:, 0] > 0).any()


def test_a_video_without_flow_planes_gets_zero_flow(tmp_path):
  pattern = rf.write_records(str(tmp_path / "one_frame.tfrecord"),
                             [rf.make_video_example("v", 0, num_frames=1, height=HEIGHT,
                                                    width=WIDTH)])
  (u, _), = _batches(pattern, 1, resize_on_device=True)
  np.testing.assert_array_equal(u[device_resize.FLOW_SCALE].numpy(), 0.0)
  np.testing.assert_array_equal(device_resize.model_input(u, "flow").numpy(), 0.0)


def test_deterministic_with_a_seed(tmp_path):
  pattern = _random_flow_records(tmp_path)
  first, second = _batches(pattern, 3, resize_on_device=True), _batches(
      pattern, 3, resize_on_device=True)
  for (a, _), (b, _) in zip(first, second):
    for key in ("rgb", "flow") + device_resize.TABLES:
      np.testing.assert_array_equal(a[key].numpy(), b[key].numpy())


def test_resize_matches_tf_image_resize_on_lines_longer_than_twice_the_output():
  """A crop of 70 x 9 lines into 8 x 8: rows kept as pairs, columns upscaled whole."""
  crop = tf.constant(np.random.default_rng(1).integers(0, 256, (2, 70, 9, 3)), tf.uint8)
  kept = device_resize.keep_lines(crop, 8)
  assert kept.shape == (2, 16, 9, 3)
  tables = device_resize.resize_tables(tf.constant([0, 0, 70, 9]), False, True, 8)
  out = device_resize.resize_crops(kept[None], tables[device_resize.RESIZE_LINES][None],
                                   tables[device_resize.RESIZE_WEIGHTS][None])[0]
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
  teacher_logits = distiller._teacher_logits  # pylint: disable=protected-access
  np.testing.assert_allclose(teacher_logits(u).numpy(), teacher_logits(f).numpy(), atol=1e-4)


def test_train_resizes_on_device_by_default_only_with_an_accelerator():
  """--resize_on_device=auto keeps CPU-only training (the quickstart) on the CPU resize."""
  from d3d_tf.training import train_lib  # pylint: disable=g-import-not-at-top
  def config(**kw):
    return train_lib.TrainConfig(stream="rgb", train_files="x", model_dir="m", **kw)
  resize_on_device = train_lib._resize_on_device  # pylint: disable=protected-access
  assert resize_on_device(config()) == bool(tf.config.list_logical_devices("GPU"))
  assert resize_on_device(config(resize_on_device="on"))
  assert not resize_on_device(config(uint8_clips=True))
  assert not resize_on_device(config(jit_compile=True))
  with np.testing.assert_raises_regex(ValueError, "choose one"):
    train_lib.validate(config(uint8_clips=True, resize_on_device="on"))
  with np.testing.assert_raises_regex(ValueError, "--jit_compile"):
    train_lib.validate(config(jit_compile=True, resize_on_device="on"))


def test_a_run_trains_on_crops_resized_on_the_device(tmp_path):
  """`--resize_on_device=on` through `train`: batches of varying crop sizes, input pictures."""
  from d3d_tf.training import train_lib  # pylint: disable=g-import-not-at-top
  from tests.training import tiny_data  # pylint: disable=g-import-not-at-top
  data_dir = tiny_data.write_tiny_records(str(tmp_path / "data"))
  flags = tiny_data.tiny_flags(data_dir, str(tmp_path / "run"), "rgb", train_steps=2,
                               checkpoint_every=2, eval_files="", resize_on_device="on")
  metrics = train_lib.train(train_lib.TrainConfig(**flags, verbose=0))
  assert metrics["step"] == 2 and np.isfinite(metrics["loss"])
  assert "--resize_on_device=on" in (tmp_path / "run" / "flags.txt").read_text()
