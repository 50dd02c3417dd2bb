"""Optimizers and learning-rate schedules, all Keras 3 built-ins but the warmup step schedule.

Keras' `CosineDecay` has warmup arguments; `PiecewiseConstantDecay` has none, so the step
recipe (S3D-G: x0.1 at 60k and 70k steps) with a linear warmup is the small serializable
schedule below.
"""

from typing import Sequence

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="d3d_tf")
class WarmupStepDecay(keras.optimizers.schedules.LearningRateSchedule):
  """Linear warmup from 0 to `learning_rate`, then times `decay` at each boundary.

  Args:
    learning_rate: Peak learning rate.
    boundaries: Increasing steps where the rate is multiplied by `decay`.
    decay: Factor applied at each boundary.
    warmup_steps: Steps of linear warmup (0: none).
  """

  def __init__(self, learning_rate: float, boundaries: Sequence[int] = (), decay: float = 0.1,
               warmup_steps: int = 0):
    self.learning_rate = float(learning_rate)
    self.boundaries = [int(b) for b in boundaries]
    self.decay = float(decay)
    self.warmup_steps = int(warmup_steps)

  def __call__(self, step):
    step = ops.cast(step, "float32")
    passed = ops.zeros((), "float32")
    for boundary in self.boundaries:
      passed = passed + ops.cast(step >= boundary, "float32")
    rate = self.learning_rate * ops.power(self.decay, passed)
    if self.warmup_steps > 0:
      rate = rate * ops.minimum(1.0, (step + 1.0) / float(self.warmup_steps))
    return rate

  def get_config(self):
    return {"learning_rate": self.learning_rate, "boundaries": self.boundaries,
            "decay": self.decay, "warmup_steps": self.warmup_steps}


def make_schedule(kind: str, learning_rate: float, total_steps: int, warmup_steps: int = 0,
                  boundaries: Sequence[int] = (), decay: float = 0.1):
  """`"cosine"` (Keras CosineDecay with linear warmup) or `"step"` (`WarmupStepDecay`)."""
  if kind == "cosine":
    if warmup_steps > 0:
      return keras.optimizers.schedules.CosineDecay(
          0.0, max(total_steps - warmup_steps, 1), warmup_target=learning_rate,
          warmup_steps=warmup_steps)
    return keras.optimizers.schedules.CosineDecay(learning_rate, max(total_steps, 1))
  if kind == "step":
    return WarmupStepDecay(learning_rate, boundaries, decay, warmup_steps)
  raise ValueError(f"Unknown lr_schedule {kind!r}; choose 'cosine' or 'step'.")


def make_optimizer(name: str, schedule, momentum: float = 0.9, weight_decay: float = 0.0,
                   clip_norm: float = 0.0, loss_scale: bool = False):
  """Keras SGD (Nesterov off) or AdamW; `weight_decay` is Keras' decoupled weight decay.

  Args:
    name: `"sgd"` or `"adamw"`.
    schedule: Learning rate or schedule.
    momentum: SGD momentum (ignored by AdamW).
    weight_decay: Decoupled decay: each step variables shrink by `lr * weight_decay`.
    clip_norm: Global gradient-norm clip (`global_clipnorm`); 0: none.
    loss_scale: Wrap in `LossScaleOptimizer` (mixed_float16).
  """
  kw = {"weight_decay": weight_decay or None, "global_clipnorm": clip_norm or None}
  if name == "sgd":
    optimizer = keras.optimizers.SGD(schedule, momentum=momentum, **kw)
  elif name == "adamw":
    optimizer = keras.optimizers.AdamW(schedule, **dict(kw, weight_decay=weight_decay))
  else:
    raise ValueError(f"Unknown optimizer {name!r}; choose 'sgd' or 'adamw'.")
  if loss_scale:
    optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
  return optimizer
