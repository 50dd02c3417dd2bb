"""The S3D-G classifier: the backbone plus the reference's logits head."""

import keras
from keras import ops

from d3d_tf.models.classifier_base import ClassifierBase


def _window_weights(length, window):
  """Weight of each position in the mean of a VALID, stride-1 average pool over one axis.

  With `k = min(window, length)` there are `n = length - k + 1` windows; position i lies in
  `min(i + 1, k, length - i, n)` of them, and the pooled mean weights it by that over `k * n`.
  """
  k = ops.minimum(window, length)
  n = length - k + 1
  i = ops.arange(length)
  counts = ops.minimum(ops.minimum(i + 1, k), ops.minimum(length - i, n))
  return ops.cast(counts, "float32") / ops.cast(k * n, "float32")


@keras.saving.register_keras_serializable(package="d3d_tf")
class LogitsPool3D(keras.layers.Layer):
  """s3dg.py's `AvgPool_0a_7x7`: average pool, VALID, stride 1, window shrunk to the input.

  With static T, H, W this is the reference's pool (`reduced_kernel_size_3d`). With dynamic
  sizes (a serving signature) it returns the mean over the pooled windows directly, as one
  position: the head's 1x1x1 conv and mean over time and space are linear, so the logits are
  the same in inference. Training runs with static shapes and takes the exact path.

  Args:
    pool_size: tuple of 3 ints. Defaults to `(2, 7, 7)`.
    **kwargs: Standard layer arguments.
  """

  def __init__(self, pool_size=(2, 7, 7), **kwargs):
    super().__init__(**kwargs)
    self.pool_size = tuple(int(p) for p in pool_size)

  def call(self, inputs):
    sizes = tuple(inputs.shape[1:4])
    if None not in sizes:
      window = tuple(min(s, p) for s, p in zip(sizes, self.pool_size))
      return ops.average_pool(inputs, window, strides=1, padding="valid")
    shape = ops.shape(inputs)
    wt, wh, ww = (_window_weights(shape[axis], p) for axis, p in zip((1, 2, 3), self.pool_size))
    weights = wt[:, None, None] * wh[None, :, None] * ww[None, None, :]
    weights = ops.cast(weights, inputs.dtype)
    return ops.sum(inputs * weights[None, :, :, :, None], axis=(1, 2, 3), keepdims=True)

  def compute_output_shape(self, input_shape):
    sizes = tuple(input_shape[1:4])
    if None not in sizes:
      sizes = tuple(s - min(s, p) + 1 for s, p in zip(sizes, self.pool_size))
    else:
      sizes = (1, 1, 1)
    return (input_shape[0],) + sizes + (input_shape[-1],)

  def get_config(self):
    config = super().get_config()
    config["pool_size"] = self.pool_size
    return config


@keras.saving.register_keras_serializable(package="d3d_tf")
class S3DGClassifier(ClassifierBase):
  """S3D-G with the reference's head: average pool, dropout, 1x1x1 conv, mean over time.

  The head follows `s3dg.py`'s `Logits` scope: `AvgPool_0a_7x7` ([2, 7, 7], stride 1, VALID,
  shrunk for small inputs), `Dropout_0b` (keep probability 0.8), `Conv2d_0c_1x1` (with bias, no
  BN, no activation), then the mean over time. Where the reference squeezes a 1x1 spatial map,
  we average over space as well, so inputs larger than 224 px still give one logit vector.
  Returns logits (float32 under mixed precision, for stable losses).

  Args:
    backbone: `S3DGBackbone`. Its `final_endpoint` feeds the head.
    num_classes: int. Number of classes.
    dropout_keep_prob: float. Probability to keep an activation. Defaults to 0.8.
    clip_geometry: `ClipGeometry` (or its dict) of the clips it is trained on, or None. Saved
      in the config, so evaluation, export and serving read it from the `.keras` file.
    **kwargs: Standard model arguments (`name`, `dtype`, `trainable`).

  Examples:
  ```python
  backbone = S3DGBackbone(input_channels=3, depth_multiplier=0.125)
  model = S3DGClassifier(backbone, num_classes=10)
  logits = model(keras.random.uniform((2, 8, 64, 64, 3), -1, 1))  # (2, 10)
  ```
  """

  def __init__(self, backbone, num_classes, dropout_keep_prob=0.8, clip_geometry=None,
               **kwargs):
    self.check_head_args(num_classes, dropout_keep_prob)
    dtype = kwargs.pop("dtype", None)

    # === Layers ===
    pool = LogitsPool3D((2, 7, 7), name="Logits_AvgPool_0a_7x7", dtype=dtype)
    dropout = keras.layers.Dropout(1.0 - dropout_keep_prob, name="Logits_Dropout_0b", dtype=dtype)
    conv = keras.layers.Conv3D(
        num_classes, (1, 1, 1), use_bias=True, name="Logits_Conv2d_0c_1x1", dtype=dtype)
    mean = keras.layers.GlobalAveragePooling3D(name="Logits_mean", dtype="float32")

    # === Functional Model ===
    inputs = keras.Input(shape=backbone.input.shape[1:], name="video")
    features = backbone(inputs)[backbone.final_endpoint]
    logits = mean(conv(dropout(pool(features))))
    super().__init__(inputs=inputs, outputs=logits, dtype=dtype, **kwargs)

    # === Config ===
    self._set_head_config(backbone, num_classes, dropout_keep_prob, clip_geometry)

  def _check_geometry(self, value):
    channels = self.input_shape[-1]
    if value.channels != channels:
      raise ValueError(f"clip_geometry.modality={value.modality!r} needs {value.channels} "
                       f"input channels; this model takes {channels}.")
    return value
