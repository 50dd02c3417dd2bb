"""S3D-G's 3D convs and max pools as 2D ops over frames or TF's 3D ops: same weights and outputs.

Every conv of S3D-G is a 2D conv in disguise: a 1xkxk conv is a 2D conv of every frame, a kx1x1
conv a 2D conv over (time, pixels), and a full kt x kh x kw conv (the first one) stacks its kt
temporal taps on the channel axis, which makes it one 2D conv per output frame; the sums are the
same up to float rounding. A max over a kt x kh x kw window is the max over time of the max over
space: a spatial 2D pool, then a temporal one, exactly. Which formulation is faster depends on the
CPU and TF's kernels (2D was 1.9x faster for inference and 4.7x for training on a Zen 4, and 3D
faster on a Zen 5), so the layers ask `frame_ops_policy` when they are traced: measured per
shape on CPU, TF's 3D ops (cuDNN) on GPU, or forced.
Where a window holds several equal maxima, TF's CPU 3D pool gradient feeds every one of them (more
gradient than the function has) and the 2D pools one, a true subgradient, like cuDNN; stacked
overlapping pools copy values, so such ties are common in S3D-G. The 3D pool therefore keeps the
2D pools' gradient on CPU, whichever formulation computes its forward pass.
"""

import contextvars

import keras
import tensorflow as tf

from d3d_tf.models import frame_ops_policy

# Whether the conv being traced is in a training graph (`FrameConv3D.call`'s `training`), for
# `convolution_op`, which Keras calls without it.
_TRAINING = contextvars.ContextVar("frame_conv_training", default=False)


def _same_padding(size, kernel, stride):
  """TF's SAME padding (before, after) of one axis of dynamic `size`."""
  out = (size + stride - 1) // stride
  total = tf.maximum((out - 1) * stride + kernel - size, 0)
  return total // 2, total - total // 2


def conv2d(images, kernel, strides, padding, gradient_dtype=None):
  """`tf.nn.conv2d`; in bfloat16, its gradients in `gradient_dtype` ("float32" or "bfloat16").

  TF's CPU kernels for the bfloat16 conv gradients are slow fallbacks on some CPUs (a bf16
  training step of S3D-G took 10x its float32 one on an AMD Zen 4, docs/PERFORMANCE.md) and 2-4x
  faster than float32 on others (AMX); its bfloat16 forward conv is fast on both. None: the
  current formulation policy's choice (measured once per machine).
  """
  strides = (1,) + tuple(strides) + (1,)
  if images.dtype != tf.bfloat16:
    return tf.nn.conv2d(images, kernel, strides, padding)
  if gradient_dtype is None:
    gradient_dtype = frame_ops_policy.current_policy().conv_gradient_dtype()
  if gradient_dtype == "bfloat16":
    return tf.nn.conv2d(images, kernel, strides, padding)

  @tf.custom_gradient
  def conv(x, w):
    def grad(dy):
      x32, w32, dy32 = (tf.cast(t, tf.float32) for t in (x, w, dy))
      dx = tf.raw_ops.Conv2DBackpropInput(
          input_sizes=tf.shape(x), filter=w32, out_backprop=dy32, strides=strides,
          padding=padding)
      dw = tf.raw_ops.Conv2DBackpropFilter(
          input=x32, filter_sizes=tf.shape(w), out_backprop=dy32, strides=strides,
          padding=padding)
      return tf.cast(dx, x.dtype), tf.cast(dw, w.dtype)

    return tf.nn.conv2d(x, w, strides, padding), grad

  return conv(images, kernel)


def _conv_over_time(inputs, kernel, strides, padding):
  """A kx1x1 conv as a 2D conv of [B, T, H*W, C] with a [k, 1] kernel."""
  shape = tf.shape(inputs)
  flat = tf.reshape(inputs, [shape[0], shape[1], shape[2] * shape[3], inputs.shape[-1]])
  y = conv2d(flat, kernel[:, 0], (strides[0], 1), padding)
  return tf.reshape(y, [shape[0], tf.shape(y)[1], shape[2], shape[3], kernel.shape[-1]])


def _conv_over_frames(inputs, kernel, strides, padding):
  """A kt x kh x kw conv as a 2D conv per output frame, its kt input frames on channels."""
  kt, kh, kw, channels, filters = kernel.shape
  stride_t = strides[0]
  if padding == "SAME" and kt > 1:
    before, after = _same_padding(tf.shape(inputs)[1], kt, stride_t)
    inputs = tf.pad(inputs, [[0, 0], [before, after], [0, 0], [0, 0], [0, 0]])
  shape = tf.shape(inputs)
  frames = (shape[1] - kt) // stride_t + 1
  if kt > 1 or stride_t > 1:
    # Output frame t sees input frames t*s .. t*s + kt - 1: tap dt is a strided slice.
    span = stride_t * (frames - 1) + 1
    inputs = tf.concat([inputs[:, dt:dt + span:stride_t] for dt in range(kt)], axis=-1)
  # Channel dt * C + c of the stacked input meets kernel[dt, :, :, c].
  kernel_2d = tf.reshape(tf.transpose(kernel, [1, 2, 0, 3, 4]), [kh, kw, kt * channels, filters])
  images = tf.reshape(inputs, [-1, shape[2], shape[3], kt * channels])
  y = conv2d(images, kernel_2d, strides[1:], padding)
  y_shape = tf.shape(y)
  return tf.reshape(y, [shape[0], frames, y_shape[1], y_shape[2], filters])


def conv3d_as_conv2d(inputs, kernel, strides, padding):
  """`tf.nn.conv3d(inputs, kernel, (1, *strides, 1), padding)` computed with `tf.nn.conv2d`.

  Args:
    inputs: `[B, T, H, W, C]` tensor.
    kernel: `[kt, kh, kw, C, F]` tensor with static shape.
    strides: 3 ints `(t, h, w)`.
    padding: `"SAME"` or `"VALID"` (TF's rules, case-insensitive).

  Returns:
    The `[B, T', H', W', F]` convolution, equal to TF's Conv3D up to float rounding.
  """
  padding = padding.upper()
  strides = tuple(int(s) for s in strides)
  kernel = tf.convert_to_tensor(kernel)
  kt, kh, kw = kernel.shape[:3]
  if kh == kw == 1 and kt > 1 and strides[1:] == (1, 1):
    return _conv_over_time(inputs, kernel, strides, padding)
  return _conv_over_frames(inputs, kernel, strides, padding)


def max_pool3d_as_pool2d(inputs, pool_size, strides, padding):
  """`tf.nn.max_pool3d(inputs, (1, *pool_size, 1), (1, *strides, 1), padding)` as 2D pools.

  Args:
    inputs: `[B, T, H, W, C]` tensor.
    pool_size: 3 ints `(t, h, w)`.
    strides: 3 ints `(t, h, w)`.
    padding: `"SAME"` or `"VALID"` (case-insensitive); SAME pads are never the max, as TF's.

  Returns:
    The `[B, T', H', W', C]` max pool, equal to TF's.
  """
  padding = padding.upper()
  (kt, kh, kw), (st, sh, sw) = tuple(pool_size), tuple(strides)
  channels = inputs.shape[-1]
  shape = tf.shape(inputs)
  x = inputs
  height, width = shape[2], shape[3]
  if (kh, kw, sh, sw) != (1, 1, 1, 1):
    x = tf.nn.max_pool2d(tf.reshape(x, [-1, height, width, channels]), (kh, kw), (sh, sw), padding)
    height, width = tf.shape(x)[1], tf.shape(x)[2]
  if (kt, st) != (1, 1):
    x = tf.reshape(x, [shape[0], shape[1], height * width, channels])
    x = tf.nn.max_pool2d(x, (kt, 1), (st, 1), padding)
  return tf.reshape(x, [shape[0], -1, height, width, channels])


def _native_max_pool3d(inputs, ksize, strides, padding, tie_gradient_to_one):
  """TF's MaxPool3D; with `tie_gradient_to_one`, the 2D pools' gradient (one tied maximum fed)."""
  ksize, strides = (1,) + tuple(ksize) + (1,), (1,) + tuple(strides) + (1,)
  if not tie_gradient_to_one:
    return tf.nn.max_pool3d(inputs, ksize, strides, padding)

  @tf.custom_gradient
  def pool(x):
    def grad(dy):
      with tf.GradientTape() as tape:
        tape.watch(x)
        y = max_pool3d_as_pool2d(x, ksize[1:4], strides[1:4], padding)
      return tape.gradient(y, x, output_gradients=dy)

    return tf.nn.max_pool3d(x, ksize, strides, padding), grad

  return pool(inputs)


def conv3d(inputs, kernel, strides, padding, formulation):
  """A channels-last 3D conv (no dilation, one group) as "2d" ops over frames or TF's "3d"."""
  if formulation == "2d":
    return conv3d_as_conv2d(inputs, kernel, strides, padding)
  return tf.nn.conv3d(inputs, kernel, (1,) + tuple(strides) + (1,), padding.upper())


def max_pool3d(inputs, pool_size, strides, padding, training=None, formulation=None):
  """A channels-last 3D max pool in `formulation` ("2d", "3d"; None: the current policy's).

  The "3d" pool keeps the "2d" pools' gradient on CPU, whose MaxPool3DGrad would feed every
  tied maximum; on a GPU (cuDNN's 3D pool gradient feeds one) it keeps TF's.
  """
  if keras.backend.backend() != "tensorflow":
    return keras.ops.max_pool(inputs, pool_size, strides, padding=padding.lower())
  padding = padding.upper()
  policy = frame_ops_policy.current_policy()
  if formulation is None:
    op = frame_ops_policy.OpShape("pool", tuple(pool_size), tuple(strides), padding,
                                  int(inputs.shape[-1]), dtype=inputs.dtype.name)
    formulation = policy.formulation(op, bool(training))
  if formulation == "2d":
    return max_pool3d_as_pool2d(inputs, pool_size, strides, padding)
  return _native_max_pool3d(inputs, pool_size, strides, padding, policy.device != "gpu")


@keras.saving.register_keras_serializable(package="d3d_tf")
class FrameConv3D(keras.layers.Conv3D):
  """`keras.layers.Conv3D` computed as the formulation policy picks; the same weights and config.

  `training` only tells the policy which timing (inference or training) decides. Keras' own
  `call` (its bias add, its activation) runs unchanged around `convolution_op`, so the
  gradients are the ones `keras.layers.Conv3D` computes, to the bit.
  """

  def call(self, inputs, training=None):
    token = _TRAINING.set(bool(training))
    try:
      return super().call(inputs)
    finally:
      _TRAINING.reset(token)

  def convolution_op(self, inputs, kernel):
    if (max(self.dilation_rate) > 1 or self.groups > 1 or self.data_format != "channels_last"
        or keras.backend.backend() != "tensorflow"):
      return super().convolution_op(inputs, kernel)
    kernel_shape = tuple(kernel.shape)
    op = frame_ops_policy.OpShape(
        "conv", kernel_shape[:3], tuple(self.strides), self.padding.upper(),
        int(kernel_shape[3]), int(kernel_shape[4]), dtype=inputs.dtype.name)
    formulation = frame_ops_policy.current_policy().formulation(op, _TRAINING.get())
    return conv3d(inputs, kernel, self.strides, self.padding, formulation)


@keras.saving.register_keras_serializable(package="d3d_tf")
class FrameMaxPooling3D(keras.layers.MaxPooling3D):
  """`keras.layers.MaxPooling3D` computed as the formulation policy picks; the same config."""

  def call(self, inputs, training=None):
    if self.data_format != "channels_last":
      return super().call(inputs)
    return max_pool3d(inputs, self.pool_size, self.strides, self.padding, training)
