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


def _curve(top1):
  return {"train/batch_label_loss": [(50, 2.0), (100, 1.0)],
          "validation/video_top1": [(50, top1), (100, top1 + 0.2)]}


def test_single_run_has_no_mean_of_one_and_top1_is_percent():
  fig = plots.curves_figure({"rgb": [_curve(0.3)], "d3d": [_curve(0.4), _curve(0.5)]})
  loss_ax, top1_ax = fig.axes
  labels = [t.get_text() for t in top1_ax.get_legend().get_texts()]
  assert labels == ["rgb", "d3d (mean of 2)"]
  assert top1_ax.get_ylabel() == "top-1 %" and loss_ax.get_ylabel()
  assert top1_ax.lines[0].get_ydata().tolist() == [30.0, 50.0]


def test_coinciding_points_are_nudged_apart():
  points = [dict(seconds=0.02, top1=0.97), dict(seconds=0.02, top1=0.97),
            dict(seconds=0.008, top1=0.75)]
  assert plots._offsets(points) == [1.0, 1.06, 1.0]  # pylint: disable=protected-access
