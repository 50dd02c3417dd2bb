"""A straightforward S3D-G in plain Keras layers (Conv3D, BatchNormalization, MaxPooling3D): the
speed reference d3d_tf's S3D-G is compared with in model_speed.py. Benchmark-only, not ours.

The same architecture as d3d_tf.models.S3DGBackbone with its defaults (separable convs from
Conv2d_2c, self-gating on every unit's output, batch norm without scale) and a 1x1x1 logits conv
over the mean of the last map; no TF-Slim names, no checkpoint compatibility.
"""

import keras
from keras import layers

from d3d_tf.models.s3dg_backbone import INCEPTION_FILTERS, MAX_POOLS


class Gating(layers.Layer):
  """S3D-G's self-gating: channels scaled by sigmoid(W mean(x))."""

  def build(self, input_shape):
    channels = input_shape[-1]
    self.kernel = self.add_weight(shape=(channels, channels), initializer="glorot_uniform")
    self.bias = self.add_weight(shape=(channels,), initializer="zeros")

  def call(self, x):
    gates = keras.ops.sigmoid(keras.ops.mean(x, axis=(1, 2, 3)) @ self.kernel + self.bias)
    return x * gates[:, None, None, None, :]


def _unit(x, filters, kernel, strides=(1, 1, 1), separable=False, gating=True, dtype=None):
  """Conv3D (or a 1xkxk then kx1x1 pair), each with batch norm and ReLU; then gating."""
  convs = [(filters, (1,) + kernel[1:], (1,) + strides[1:]), (filters, kernel[:1] + (1, 1),
           strides[:1] + (1, 1))] if separable and kernel[0] > 1 else [(filters, kernel, strides)]
  for f, k, s in convs:
    x = layers.Conv3D(f, k, s, padding="same", use_bias=False, dtype=dtype)(x)
    x = layers.BatchNormalization(scale=False, epsilon=1e-3, momentum=0.999, dtype=dtype)(x)
    x = layers.ReLU(dtype=dtype)(x)
  return Gating(dtype=dtype)(x) if gating else x


def plain_s3dg(num_classes, dtype=None):
  """Plain-Keras S3D-G classifier taking [B, T, H, W, 3] clips in [-1, 1], returning logits."""
  inputs = keras.Input((None, None, None, 3))
  x = _unit(inputs, 64, (3, 7, 7), (2, 2, 2), gating=False, dtype=dtype)
  x = layers.MaxPooling3D(*MAX_POOLS["MaxPool_2a_3x3"], padding="same", dtype=dtype)(x)
  x = _unit(x, 64, (1, 1, 1), gating=False, dtype=dtype)
  x = _unit(x, 192, (3, 3, 3), separable=True, dtype=dtype)
  for name, filters in INCEPTION_FILTERS.items():
    if name in ("Mixed_3b", "Mixed_4b", "Mixed_5b"):
      pool = {"Mixed_3b": "MaxPool_3a_3x3", "Mixed_4b": "MaxPool_4a_3x3",
              "Mixed_5b": "MaxPool_5a_2x2"}[name]
      x = layers.MaxPooling3D(*MAX_POOLS[pool], padding="same", dtype=dtype)(x)
    b0 = _unit(x, filters[0], (1, 1, 1), dtype=dtype)
    b1 = _unit(_unit(x, filters[1], (1, 1, 1), gating=False, dtype=dtype), filters[2],
               (3, 3, 3), separable=True, dtype=dtype)
    b2 = _unit(_unit(x, filters[3], (1, 1, 1), gating=False, dtype=dtype), filters[4],
               (3, 3, 3), separable=True, dtype=dtype)
    pooled = layers.MaxPooling3D(3, 1, padding="same", dtype=dtype)(x)
    b3 = _unit(pooled, filters[5], (1, 1, 1), dtype=dtype)
    x = layers.Concatenate(dtype=dtype)([b0, b1, b2, b3])
  x = layers.GlobalAveragePooling3D(keepdims=True, dtype=dtype)(x)
  x = layers.Dropout(0.2, dtype=dtype)(x)
  x = layers.Conv3D(num_classes, 1, dtype=dtype)(x)
  logits = layers.Flatten(dtype="float32")(x)
  return keras.Model(inputs, logits, name="plain_keras_s3dg")

