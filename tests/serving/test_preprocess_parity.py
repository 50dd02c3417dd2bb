"""The shared raw-frame preprocessing equals the records evaluation path, number for number."""

import numpy as np
import tensorflow as tf

from d3d_tf.data import datasets
from d3d_tf.serving import preprocess
from tests.data import records_fixture as rf


def test_preprocess_frames_matches_eval_dataset_centre_view(tmp_path):
  frames = rf.textured_frames(8, 48, 64, 3, -2, seed=3)
  example = rf.make_video_example("v0", 0, frames=frames, with_flow=False)
  path = rf.write_records(str(tmp_path / "val.tfrecord"), [example])
  features, _ = next(iter(datasets.eval_dataset(path, num_clips=1, num_frames=8, crop_size=32)))
  decoded = np.stack([tf.io.decode_jpeg(rf.encode_jpeg(f), channels=3).numpy() for f in frames])
  ours = preprocess.preprocess_frames(decoded[None], 32).numpy()
  assert ours.shape == (1, 8, 32, 32, 3)
  np.testing.assert_allclose(ours, features["rgb"].numpy(), atol=1e-5)


def test_preprocess_centre_crops_any_size_and_jpeg_batch_decodes():
  frames = np.zeros([2, 3, 40, 100, 3], np.uint8)
  frames[..., 30:70, :] = 255  # The central 35x35 square (0.875 * 40) is white.
  out = preprocess.preprocess_frames(frames, 16).numpy()
  np.testing.assert_allclose(out, 1.0)
  jpegs = tf.constant([[tf.io.encode_jpeg(f).numpy() for f in v] for v in frames])
  decoded = preprocess.decode_jpeg_batch(jpegs)
  assert decoded.shape == (2, 3, 40, 100, 3) and decoded.dtype == tf.uint8
