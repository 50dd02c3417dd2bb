"""Building blocks of S3D-G: the (separable) 3D conv unit, self-gating and the Inception block.

Written after the TF-Slim reference (`research/slim/nets/s3dg.py`, `i3d_utils.py`) so that
weights map one to one. Layer names follow the reference's scopes with `_` for `/` (Keras 3
forbids `/` in names): `Mixed_4b` > `Branch_1_Conv2d_0b_3x3` > `conv`, `bn`, `conv_temporal`.
"""

import keras
import numpy as np
from keras import ops

from d3d_tf.models.frame_ops import FrameConv3D, FrameMaxPooling3D, max_pool3d
from d3d_tf.models.fused_batch_norm import FusedBatchNormalization

BN_MOMENTUM = 0.999
BN_EPSILON = 1e-3


@keras.saving.register_keras_serializable(package="d3d_tf")
class CenterInitializer(keras.initializers.Initializer):
  """Identity in time for a [k, 1, 1, C, C] temporal kernel, as `i3d_utils.center_initializer`.

  A separable block then starts as its spatial conv alone, which the reference calls critical
  for convergence.
  """

  def __call__(self, shape, dtype=None):
    if len(shape) != 5 or shape[1] != 1 or shape[2] != 1 or shape[3] != shape[4]:
      raise ValueError(f"CenterInitializer needs a [k, 1, 1, C, C] kernel. Received: {shape}")
    if shape[0] % 2 == 0:
      raise ValueError(f"Temporal kernel size must be odd. Received: {shape[0]}")
    kernel = np.zeros(shape, np.float32)
    kernel[shape[0] // 2, 0, 0] = np.eye(shape[3], dtype=np.float32)
    return ops.cast(kernel, dtype or "float32")

  def get_config(self):
    return {}


@keras.saving.register_keras_serializable(package="d3d_tf")
class SelfGating(keras.layers.Layer):
  """S3D-G feature gating: x * sigmoid(W · mean_{t,h,w}(x)), W a [C, C] map without bias.

  Args:
    **kwargs: Standard layer arguments (`name`, `dtype`).
  """

  def build(self, input_shape):
    channels = input_shape[-1]
    # As s3dg.py: truncated normal(0.01), no bias, no batch norm.
    self.kernel = self.add_weight(
        name="kernel", shape=(channels, channels),
        initializer=keras.initializers.TruncatedNormal(stddev=0.01))

  def call(self, inputs):
    pooled = ops.mean(inputs, axis=(1, 2, 3))
    gates = ops.sigmoid(ops.matmul(pooled, self.kernel))
    return inputs * gates[:, None, None, None, :]


@keras.saving.register_keras_serializable(package="d3d_tf")
class STConv3D(keras.layers.Layer):
  """A conv unit of S3D-G: full or separable 3D conv with batch norm and ReLU, optional gating.

  Full (`separable=False` or a temporal kernel of 1): conv (no bias) > BN > ReLU. Separable, as
  `i3d_utils.conv3d_spatiotemporal`: spatial 1xkxk conv (no bias) > BN > ReLU, then temporal
  kx1x1 conv with a bias and ReLU but no BN, initialised to identity in time.
  `temporal_batch_norm=True` puts BN after the temporal conv instead of its bias, and
  `padding="symmetric"` pads `(k - 1) // 2` on both sides of every axis where TF's SAME pads
  the extra row after (they differ for strided convs): both as torchvision's S3D.

  Args:
    filters: int. Output channels.
    kernel_size: tuple of 3 ints `(t, h, w)`.
    strides: int or tuple of 3 ints. Defaults to 1.
    separable: bool. Split into spatial then temporal convs. Defaults to `False`.
    gating: bool. Apply `SelfGating` to the output. Defaults to `False`.
    temporal_batch_norm: bool. BN (instead of a bias) after the temporal conv. Defaults to
      `False`.
    padding: str. `"same"` (TF-Slim) or `"symmetric"` (PyTorch's). Defaults to `"same"`.
    bn_scale: bool. BN learns a gamma (PyTorch's BN does; slim's default does not). Defaults
      to `False`.
    bn_momentum: float. Moving-average decay. Defaults to 0.999 (s3dg.py).
    bn_epsilon: float. Defaults to 1e-3 (s3dg.py).
    sync_batch_norm: bool. Batch statistics over the global batch of all replicas
      (`keras.layers.BatchNormalization(synchronized=True)`) instead of each replica's own.
      Defaults to `False`.
    **kwargs: Standard layer arguments.
  """

  def __init__(self, filters, kernel_size, strides=1, separable=False, gating=False,
               temporal_batch_norm=False, padding="same", bn_scale=False,
               bn_momentum=BN_MOMENTUM, bn_epsilon=BN_EPSILON, sync_batch_norm=False,
               **kwargs):
    super().__init__(**kwargs)
    kernel_size = tuple(int(k) for k in kernel_size)
    strides = (int(strides),) * 3 if isinstance(strides, int) else tuple(strides)
    if len(kernel_size) != 3 or len(strides) != 3:
      raise ValueError(
          f"kernel_size and strides need 3 values (t, h, w). Received: "
          f"kernel_size={kernel_size}, strides={strides}")
    if padding not in ("same", "symmetric"):
      raise ValueError(f"padding must be 'same' or 'symmetric'. Received: padding={padding!r}")

    # === Layers ===
    self.is_separable = separable and kernel_size[0] > 1
    spatial_kernel = (1,) + kernel_size[1:] if self.is_separable else kernel_size
    spatial_strides = (1,) + strides[1:] if self.is_separable else strides
    sub = {"dtype": self.dtype_policy}
    bn_args = dict(momentum=bn_momentum, epsilon=bn_epsilon, scale=bn_scale,
                   synchronized=bool(sync_batch_norm), **sub)
    conv_padding = "same" if padding == "same" else "valid"
    # As slim.batch_norm: beta but no gamma (scale=False), and no conv bias before BN.
    self.conv = FrameConv3D(
        filters, spatial_kernel, spatial_strides, padding=conv_padding, use_bias=False,
        kernel_initializer=keras.initializers.TruncatedNormal(stddev=0.01), name="conv", **sub)
    self.bn = FusedBatchNormalization(name="bn", **bn_args)
    self.conv_temporal = None
    self.bn_temporal = None
    if self.is_separable:
      self.conv_temporal = FrameConv3D(
          filters, (kernel_size[0], 1, 1), (strides[0], 1, 1), padding=conv_padding,
          use_bias=not temporal_batch_norm, kernel_initializer=CenterInitializer(),
          name="conv_temporal", **sub)
      if temporal_batch_norm:
        self.bn_temporal = FusedBatchNormalization(name="bn_temporal", **bn_args)
    self.self_gating = SelfGating(name="self_gating", **sub) if gating else None

    # === Config ===
    self.filters = filters
    self.kernel_size = kernel_size
    self.strides = strides
    self.separable = separable
    self.gating = gating
    self.temporal_batch_norm = temporal_batch_norm
    self.padding = padding
    self.bn_scale = bn_scale
    self.bn_momentum = bn_momentum
    self.bn_epsilon = bn_epsilon
    self.sync_batch_norm = bool(sync_batch_norm)

  def _pad(self, inputs, kernel):
    if self.padding == "same":
      return inputs
    return symmetric_pad(inputs, kernel, 0.0)

  def build(self, input_shape):
    # Kernels depend on channels only: build with unknown sizes, padded or not.
    shape = (None, None, None, None, input_shape[-1])
    self.conv.build(shape)
    shape = shape[:-1] + (self.filters,)
    self.bn.build(shape)
    if self.conv_temporal is not None:
      self.conv_temporal.build(shape)
      if self.bn_temporal is not None:
        self.bn_temporal.build(shape)
    if self.self_gating is not None:
      self.self_gating.build(shape)

  def call(self, inputs, training=None):
    x = self.conv(self._pad(inputs, self.conv.kernel_size))
    x = ops.relu(self.bn(x, training=training))
    if self.conv_temporal is not None:
      x = self.conv_temporal(self._pad(x, self.conv_temporal.kernel_size))
      if self.bn_temporal is not None:
        x = self.bn_temporal(x, training=training)
      x = ops.relu(x)
    if self.self_gating is not None:
      x = self.self_gating(x)
    return x

  def compute_output_shape(self, input_shape):
    # Symmetric padding keeps SAME's output sizes, ceil(size / stride), for odd kernels.
    shape = list(input_shape)
    for axis, stride in enumerate(self.strides, start=1):
      if shape[axis] is not None:
        shape[axis] = -(-shape[axis] // stride)
    shape[-1] = self.filters
    return tuple(shape)

  def get_config(self):
    config = super().get_config()
    config.update({
        "filters": self.filters, "kernel_size": self.kernel_size, "strides": self.strides,
        "separable": self.separable, "gating": self.gating,
        "temporal_batch_norm": self.temporal_batch_norm, "padding": self.padding,
        "bn_scale": self.bn_scale, "bn_momentum": self.bn_momentum,
        "bn_epsilon": self.bn_epsilon, "sync_batch_norm": self.sync_batch_norm})
    return config


@keras.saving.register_keras_serializable(package="d3d_tf")
class InceptionBlock3D(keras.layers.Layer):
  """The 3D Inception-v1 block of `i3d_utils.inception_block_v1_3d`, gating every branch.

  Branch 0: 1x1x1. Branches 1, 2: 1x1x1 then a (separable) tx3x3. Branch 3: 3x3x3 max pool
  (stride 1, SAME) then 1x1x1. Outputs are concatenated on channels.

  Args:
    filters: tuple of 6 ints: Branch_0 0a, Branch_1 0a, Branch_1 0b, Branch_2 0a, Branch_2 0b,
      Branch_3 0b, in the reference's order.
    temporal_kernel_size: int. 1 (2D) or 3 (separable 3D) for the 3x3 convs.
    gating: bool. Self-gating on each branch's output. Defaults to `True`.
    temporal_batch_norm: bool. See `STConv3D`. Defaults to `False`.
    bn_scale: bool. See `STConv3D`. Defaults to `False`.
    bn_momentum, bn_epsilon: float. Batch-norm settings, as `STConv3D`.
    sync_batch_norm: bool. See `STConv3D`. Defaults to `False`.
    **kwargs: Standard layer arguments.
  """

  def __init__(self, filters, temporal_kernel_size=3, gating=True, temporal_batch_norm=False,
               bn_scale=False, bn_momentum=BN_MOMENTUM, bn_epsilon=BN_EPSILON,
               sync_batch_norm=False, **kwargs):
    super().__init__(**kwargs)
    filters = tuple(int(f) for f in filters)
    if len(filters) != 6:
      raise ValueError(f"InceptionBlock3D needs 6 filter counts. Received: filters={filters}")

    # === Layers ===
    # The gate follows the last conv of each branch and takes its scope, as in the reference.
    def unit(channels, kernel, name, last=False):
      return STConv3D(
          channels, kernel, separable=True, gating=gating and last,
          temporal_batch_norm=temporal_batch_norm, bn_scale=bn_scale,
          bn_momentum=bn_momentum, bn_epsilon=bn_epsilon, sync_batch_norm=sync_batch_norm,
          name=name, dtype=self.dtype_policy)

    t = temporal_kernel_size
    # Attributes, not lists: tf.train.Checkpoint tracks a Keras layer's attributes but not the
    # layers inside its Python lists, whose batch-norm statistics a checkpoint would then miss.
    self.branch_0_0a = unit(filters[0], (1, 1, 1), "Branch_0_Conv2d_0a_1x1", last=True)
    self.branch_1_0a = unit(filters[1], (1, 1, 1), "Branch_1_Conv2d_0a_1x1")
    self.branch_1_0b = unit(filters[2], (t, 3, 3), "Branch_1_Conv2d_0b_3x3", last=True)
    self.branch_2_0a = unit(filters[3], (1, 1, 1), "Branch_2_Conv2d_0a_1x1")
    self.branch_2_0b = unit(filters[4], (t, 3, 3), "Branch_2_Conv2d_0b_3x3", last=True)
    self.branch_3_pool = FrameMaxPooling3D(
        (3, 3, 3), strides=1, padding="same", name="Branch_3_MaxPool_0a_3x3",
        dtype=self.dtype_policy)
    self.branch_3_0b = unit(filters[5], (1, 1, 1), "Branch_3_Conv2d_0b_1x1", last=True)

    # === Config ===
    self.filters = filters
    self.temporal_kernel_size = temporal_kernel_size
    self.gating = gating
    self.temporal_batch_norm = temporal_batch_norm
    self.bn_scale = bn_scale
    self.bn_momentum = bn_momentum
    self.bn_epsilon = bn_epsilon
    self.sync_batch_norm = bool(sync_batch_norm)

  def _branches(self):
    return ((self.branch_0_0a,), (self.branch_1_0a, self.branch_1_0b),
            (self.branch_2_0a, self.branch_2_0b), (self.branch_3_0b,))

  def build(self, input_shape):
    for branch in self._branches():
      shape = input_shape
      for layer in branch:
        layer.build(shape)
        shape = layer.compute_output_shape(shape)

  def call(self, inputs, training=None):
    outputs = []
    for index, branch in enumerate(self._branches()):
      x = self.branch_3_pool(inputs) if index == 3 else inputs
      for layer in branch:
        x = layer(x, training=training)
      outputs.append(x)
    return ops.concatenate(outputs, axis=-1)

  def compute_output_shape(self, input_shape):
    channels = self.filters[0] + self.filters[2] + self.filters[4] + self.filters[5]
    return tuple(input_shape[:-1]) + (channels,)

  def get_config(self):
    config = super().get_config()
    config.update({
        "filters": self.filters, "temporal_kernel_size": self.temporal_kernel_size,
        "gating": self.gating, "temporal_batch_norm": self.temporal_batch_norm,
        "bn_scale": self.bn_scale, "bn_momentum": self.bn_momentum,
        "bn_epsilon": self.bn_epsilon, "sync_batch_norm": self.sync_batch_norm})
    return config


def symmetric_pad(inputs, kernel_size, value):
  """Pads `(k - 1) // 2` before and after each of T, H, W, as PyTorch's `padding=k // 2`."""
  pads = [[0, 0]] + [[(k - 1) // 2] * 2 for k in kernel_size] + [[0, 0]]
  if not any(p for p, _ in pads):
    return inputs
  return ops.pad(inputs, pads, constant_values=value)


@keras.saving.register_keras_serializable(package="d3d_tf")
class SymmetricMaxPooling3D(keras.layers.Layer):
  """Max pool after padding `(k - 1) // 2` of -inf on both sides, as PyTorch's `MaxPool3d`.

  TF's SAME puts the extra padding after; PyTorch pads before and drops what does not fit, so
  strided pools see other windows. The output size is PyTorch's.

  Args:
    pool_size: tuple of 3 ints.
    strides: tuple of 3 ints.
    **kwargs: Standard layer arguments.
  """

  def __init__(self, pool_size, strides, **kwargs):
    super().__init__(**kwargs)
    self.pool_size = tuple(int(p) for p in pool_size)
    self.strides = tuple(int(s) for s in strides)

  def call(self, inputs, training=None):
    padded = symmetric_pad(inputs, self.pool_size, float("-inf"))
    return max_pool3d(padded, self.pool_size, self.strides, "valid", training)

  def compute_output_shape(self, input_shape):
    shape = list(input_shape)
    for axis, (k, s) in enumerate(zip(self.pool_size, self.strides), start=1):
      if shape[axis] is not None:
        shape[axis] = (shape[axis] + 2 * ((k - 1) // 2) - k) // s + 1
    return tuple(shape)

  def get_config(self):
    config = super().get_config()
    config.update({"pool_size": self.pool_size, "strides": self.strides})
    return config
