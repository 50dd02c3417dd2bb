"""Training curves come back from TensorBoard event files as TensorBoard wrote them."""

import os

import tensorflow as tf

from d3d_tf.reporting import curves
from d3d_tf.reporting import plots


def test_scalars_round_trip_and_plot(tmp_path):
  model_dir = tmp_path / "rgb"
  for split, tag, values in (("train", "batch_label_loss", (2.3, 1.9, 1.2)),
                             ("validation", "video_top1", (0.1, 0.3, 0.6))):
    writer = tf.summary.create_file_writer(str(model_dir / "logs" / split))
    with writer.as_default():
      for i, v in enumerate(values):
        tf.summary.scalar(tag, v, step=50 * (i + 1))
      tf.summary.image("picture", tf.zeros([1, 4, 4, 3]), step=0)  # Not a scalar: skipped.
    writer.close()
  got = curves.model_curves(str(model_dir))
  assert [s for s, _ in got["validation/video_top1"]] == [50, 100, 150]
  assert [round(v, 5) for _, v in got["train/batch_label_loss"]] == [2.3, 1.9, 1.2]
  assert not any("picture" in k for k in got)
  path = plots.training_curves(str(tmp_path / "curves.png"), {"rgb": [got, got]})
  assert os.path.getsize(path) > 1000
