"""End-point error (EPE) and its two reference lines: zero flow and the training mean flow.

EPE is the mean over clips and grid positions of the Euclidean distance between predicted
and true flow vectors, in pixels (per frame, of the S x S input clip). Every clip has the same
number of positions, so this is also the mean of per-clip EPEs.
"""

from typing import Dict

import numpy as np
from keras import ops


def end_point_error(predicted, true) -> np.ndarray:
  """Per-position EPE: ||predicted - true||_2 over the last axis (dx, dy), float64."""
  diff = np.asarray(predicted, np.float64) - np.asarray(true, np.float64)
  return np.sqrt(np.sum(diff * diff, axis=-1))


def epe_loss(predicted, true, epsilon: float = 1e-8):
  """Mean EPE as a training loss; `epsilon` keeps the gradient finite at zero error."""
  diff = ops.cast(predicted, "float32") - ops.cast(true, "float32")
  return ops.mean(ops.sqrt(ops.sum(ops.square(diff), axis=-1) + epsilon))


class EPEMeter:
  """Sums EPE over batches for named predictions, plus the zero and mean-flow baselines.

  Args:
    mean_flow: float [2], the training-set mean flow (pixels), the `mean_epe` prediction.

  Example:
  ```python
  meter = EPEMeter(mean_flow=[0.5, 0.0])
  meter.update(true, {"Mixed_3c": predicted})
  meter.result()  # {"Mixed_3c": 1.2, "zero_epe": 2.0, "mean_epe": 1.9}
  ```
  """

  def __init__(self, mean_flow):
    self.mean_flow = np.asarray(mean_flow, np.float64).reshape([2])
    self.sums: Dict[str, float] = {}
    self.zero_sum = 0.0
    self.mean_sum = 0.0
    self.positions = 0
    self.clips = 0

  def update(self, true, predictions: Dict[str, np.ndarray]):
    """Adds one batch: `true` [B, ..., 2] and predictions of the same shape, by name."""
    true = np.asarray(true, np.float64)
    self.zero_sum += float(end_point_error(0.0, true).sum())
    self.mean_sum += float(end_point_error(self.mean_flow, true).sum())
    self.positions += int(np.prod(true.shape[:-1]))
    self.clips += int(true.shape[0])
    for name, predicted in predictions.items():
      if np.shape(predicted) != true.shape:
        raise ValueError(f"Prediction {name!r} has shape {np.shape(predicted)}; the target "
                         f"has {true.shape}.")
      self.sums[name] = self.sums.get(name, 0.0) + float(end_point_error(predicted, true).sum())

  def result(self) -> Dict[str, float]:
    """Mean EPE per name, and `zero_epe` / `mean_epe`; raises when nothing was added."""
    if not self.positions:
      raise ValueError("No clips were evaluated: the held-out set (--eval_files) is empty.")
    out = {name: total / self.positions for name, total in self.sums.items()}
    out["zero_epe"] = self.zero_sum / self.positions
    out["mean_epe"] = self.mean_sum / self.positions
    return out
