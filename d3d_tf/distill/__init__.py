"""D3D distillation: per-example losses and the one trainer used for all three streams.

The teacher (optical flow) and student (RGB) read different keys of the same batch, which is why
this package has its own ``keras.Model`` trainer instead of ``keras.distillation.Distiller``.
"""

from d3d_tf.distill.distiller import D3DDistiller
from d3d_tf.distill.losses import (
  DISTILL_LOSSES,
  UNLABELLED,
  LogitKL,
  LogitMSE,
  get_distill_loss,
  label_cross_entropy,
  logit_mse,
  softened_kl,
)

__all__ = [
  "D3DDistiller",
  "DISTILL_LOSSES",
  "UNLABELLED",
  "LogitKL",
  "LogitMSE",
  "get_distill_loss",
  "label_cross_entropy",
  "logit_mse",
  "softened_kl",
]
