"""Metrics and late fusion on hand-checked numbers."""

import numpy as np
import pytest

from d3d_tf.evaluation import ensemble
from d3d_tf.evaluation import metrics
from d3d_tf.evaluation import report


def test_topk_mean_per_class_and_confusion():
  scores = np.array([[0.9, 0.1, 0.0], [0.2, 0.5, 0.3], [0.6, 0.3, 0.1], [0.1, 0.2, 0.7]])
  labels = np.array([0, 2, 1, 2])
  assert metrics.top_k_accuracy(scores, labels, 1) == 0.5
  assert metrics.top_k_accuracy(scores, labels, 2) == 1.0
  assert metrics.top_k_accuracy(scores, labels, 5) == 1.0  # k capped at 3 classes.
  predictions = scores.argmax(1)
  np.testing.assert_array_equal(metrics.confusion_matrix(labels, predictions, 3),
                                [[1, 0, 0], [1, 0, 0], [0, 1, 1]])
  # Per class recall: class0 1/1, class1 0/1, class2 1/2 -> mean 0.5.
  assert metrics.mean_per_class_accuracy(labels, predictions, 3) == pytest.approx(0.5)


def test_fusion_is_weighted_mean_of_softmax():
  logits = np.array([[[2.0, 0.0]], [[0.0, 1.0]]])  # 2 models, 1 video, 2 classes.
  p_rgb, p_flow = ensemble.softmax(logits[0]), ensemble.softmax(logits[1])
  fused = ensemble.fuse(logits, [1.0, 1.5])
  np.testing.assert_allclose(fused, (p_rgb + 1.5 * p_flow) / 2.5, rtol=1e-6)
  with pytest.raises(ValueError):
    ensemble.fuse(logits, [1.0])


def test_table_lists_cost_columns():
  rows = [dict(model="rgb.keras", inputs="RGB", top1=0.5, top5=1.0, mean_per_class=0.5,
               clips_per_second=12.3, flow_seconds_per_video=None),
          dict(model="flow.keras", inputs="flow", top1=0.25, top5=1.0, mean_per_class=0.3,
               clips_per_second=10.0, flow_seconds_per_video=1.5)]
  lines = report.format_table(rows).splitlines()
  assert lines[0].split()[:4] == ["model", "inputs", "top-1", "top-5"]
  assert lines[2].split() == ["rgb.keras", "RGB", "50.00", "100.00", "50.00", "12.3", "-"]
  assert lines[3].split()[-1] == "1.50"
  assert len(lines) == 4  # A known cost needs no note.
