"""EPE, its baselines and the flow target, against hand-computed values."""

import math

import numpy as np
import pytest

from d3d_tf.probing import metrics, targets


def test_end_point_error_hand_computed():
  true = np.array([[3.0, 4.0], [1.0, 1.0], [-2.0, 0.0]])
  predicted = np.array([[0.0, 0.0], [1.0, 1.0], [1.0, 4.0]])
  np.testing.assert_allclose(metrics.end_point_error(predicted, true), [5.0, 0.0, 5.0])


def test_meter_probe_zero_and_mean_baselines():
  # Two clips of two positions: true flows (3, 4), (0, 0) | (0, 0), (0, 2).
  true = np.array([[[3.0, 4.0], [0.0, 0.0]], [[0.0, 0.0], [0.0, 2.0]]])
  predicted = np.array([[[3.0, 0.0], [0.0, 0.0]], [[0.0, 0.0], [0.0, 2.0]]])
  meter = metrics.EPEMeter(mean_flow=[1.0, 1.0])
  meter.update(true[:1], {"probe": predicted[:1]})
  meter.update(true[1:], {"probe": predicted[1:]})
  result = meter.result()
  assert result["probe"] == pytest.approx((4.0 + 0 + 0 + 0) / 4)
  assert result["zero_epe"] == pytest.approx((5.0 + 0 + 0 + 2.0) / 4)
  # |(2, 3)| + |(-1, -1)| + |(-1, -1)| + |(-1, 1)|.
  expected_mean = (math.sqrt(13) + 3 * math.sqrt(2)) / 4
  assert result["mean_epe"] == pytest.approx(expected_mean)
  assert meter.clips == 2 and meter.positions == 4


def test_meter_errors_name_the_problem():
  with pytest.raises(ValueError, match="eval_files"):
    metrics.EPEMeter([0, 0]).result()
  with pytest.raises(ValueError, match="has shape"):
    metrics.EPEMeter([0, 0]).update(np.zeros((1, 2, 2)), {"p": np.zeros((1, 3, 2))})


def test_epe_loss_is_mean_epe():
  true = np.array([[[3.0, 4.0], [0.0, 0.0]]], np.float32)
  assert float(metrics.epe_loss(np.zeros_like(true), true)) == pytest.approx(2.5, abs=1e-4)


def test_flow_target_undoes_bound_and_averages_cells():
  # Pipeline flow is pixels / bound: dx = t (frame index), dy = x (column) in pixels.
  bound, t, s = 20.0, 4, 4
  dx = np.broadcast_to(np.arange(t, dtype=np.float32)[:, None, None], (t, s, s))
  dy = np.broadcast_to(np.arange(s, dtype=np.float32)[None, None, :], (t, s, s))
  flow = np.stack([dx, dy], axis=-1)[None] / bound
  target = np.asarray(targets.flow_target(flow, bound, space_stride=2))
  assert target.shape == (1, 2, 2, 2, 2)
  # Time windows {0, 1} and {2, 3}; column cells {0, 1} and {2, 3}.
  np.testing.assert_allclose(target[0, :, 0, 0, 0], [0.5, 2.5], rtol=1e-6)
  np.testing.assert_allclose(target[0, 0, 0, :, 1], [0.5, 2.5], rtol=1e-6)
  np.testing.assert_allclose(target[0, :, 1, :, 1], [[0.5, 2.5], [0.5, 2.5]], rtol=1e-6)


def test_target_shape():
  assert targets.target_shape(16, 48, 4) == (8, 12, 12)
  with pytest.raises(ValueError, match="num_frames must be a multiple of 2"):
    targets.target_shape(15, 48, 4)
  with pytest.raises(ValueError, match="space_stride"):
    targets.target_shape(16, 50, 4)
