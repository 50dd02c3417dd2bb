"""Keras batch norm whose training pass runs TensorFlow's fused kernel: same math, less time.

Keras 3's `BatchNormalization` computes batch moments and the normalisation as separate ops and
upcasts bfloat16 activations to float32 on the way, so in training it and its gradient cost
about 1.5x (float32) to 2x (bfloat16) what `FusedBatchNormV3` does (docs/PERFORMANCE.md). The
fused kernel normalises with the biased batch variance, as Keras does, but returns the unbiased
one for the moving average: it is rescaled by (n - 1) / n so the moving statistics stay Keras'.
Inference, masks, renorm and synchronized BN keep Keras' own code.
"""

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="d3d_tf")
class FusedBatchNormalization(keras.layers.BatchNormalization):
  """`keras.layers.BatchNormalization` with a fused training pass; the same weights and config."""

  def _can_fuse(self, inputs, training, mask):
    rank = len(inputs.shape)
    return (training and self.trainable and mask is None and not self.renorm
            and not self.synchronized and keras.backend.backend() == "tensorflow"
            and rank in (4, 5) and self.axis in (-1, rank - 1))

  def call(self, inputs, training=None, mask=None):
    if not self._can_fuse(inputs, training, mask):
      return super().call(inputs, training=training, mask=mask)
    x = tf.cast(inputs, self.compute_dtype)
    channels = x.shape[-1]
    scale = tf.cast(self.gamma, tf.float32) if self.scale else tf.ones([channels], tf.float32)
    offset = tf.cast(self.beta, tf.float32) if self.center else tf.zeros([channels], tf.float32)
    y, mean, unbiased_variance = tf.compat.v1.nn.fused_batch_norm(
        x, scale, offset, epsilon=self.epsilon, is_training=True,
        data_format="NHWC" if len(x.shape) == 4 else "NDHWC")
    count = tf.cast(tf.size(x) // channels, tf.float32)
    variance = unbiased_variance * tf.maximum(count - 1.0, 0.0) / count
    momentum = self.momentum
    self.moving_mean.assign(self.moving_mean * momentum + mean * (1.0 - momentum))
    self.moving_variance.assign(self.moving_variance * momentum + variance * (1.0 - momentum))
    return y
