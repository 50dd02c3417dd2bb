"""The closing table of a run: aligned, rounded, and without metrics that do not apply."""

from d3d_tf.training import final_metrics

RGB_RUN = {"step": 1000, "train_seconds": 3725.04, "val_top1": 0.61234, "val_top5": None,
           "loss": 1.234567, "distill_loss": 0.0, "learning_rate": 0.0, "top1": 0.5,
           "clips_per_second": 123.456}


def test_rgb_table_drops_teacher_terms_none_and_zero_learning_rate():
  assert final_metrics.table(RGB_RUN, "rgb") == "\n".join([
      "Final metrics:",
      "  step              1000",
      "  train_seconds     3725.0 (1:02:05)",
      "  val_top1          0.6123",
      "  loss              1.2346",
      "  top1              0.5000",
      "  clips_per_second  123.5",
  ])


def test_d3d_keeps_a_nonzero_distill_loss_and_rgb_drops_it():
  metrics = {"loss": 2.0, "distill_loss": 0.25, "learning_rate": 2.5e-5}
  d3d = final_metrics.table(metrics, "d3d")
  assert "  distill_loss   0.2500" in d3d.splitlines()
  assert "  learning_rate  2.500e-05" in d3d.splitlines()
  assert "distill_loss" not in final_metrics.table(metrics, "flow")


def test_rates_get_one_decimal():
  assert final_metrics.format_value("clips_per_second", 96.5233) == "96.5"
  assert final_metrics.format_value("loss", 96.5233) == "96.5233"


def test_without_stream_a_zero_distill_loss_is_still_dropped():
  assert "distill_loss" not in final_metrics.table({"loss": 1.0, "distill_loss": 0.0})
  assert final_metrics.table({"val_top1": None}) == "Final metrics: none"
