"""3D convs and max pools computed as 2D ops equal TF's 3D ops, forward and backward."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from d3d_tf.models import S3DGBackbone, frame_ops
from d3d_tf.models.s3dg_backbone import ENDPOINTS
from d3d_tf.models.frame_ops import (
    FrameConv3D, FrameMaxPooling3D, conv3d_as_conv2d, max_pool3d_as_pool2d)
from d3d_tf.models.fused_batch_norm import FusedBatchNormalization


@pytest.mark.parametrize("shape,kernel,strides,padding", [
    ((2, 8, 32, 32, 3), (3, 7, 7), (2, 2, 2), "SAME"),   # S3D-G's first conv.
    ((1, 7, 33, 31, 2), (3, 7, 7), (2, 2, 2), "SAME"),   # Odd sizes pad unevenly.
    ((2, 1, 16, 16, 3), (3, 7, 7), (2, 2, 2), "SAME"),   # A single frame.
    ((1, 6, 12, 12, 3), (3, 7, 7), (1, 2, 2), "SAME"),   # Stride in space only.
    ((2, 5, 9, 9, 6), (1, 1, 1), (1, 1, 1), "SAME"),     # Inception 1x1x1.
    ((2, 5, 9, 10, 6), (1, 3, 3), (1, 1, 1), "SAME"),    # Separable, spatial part.
    ((2, 5, 9, 10, 6), (3, 1, 1), (1, 1, 1), "SAME"),    # Separable, temporal part.
    ((1, 9, 8, 8, 4), (7, 1, 1), (2, 1, 1), "VALID"),    # torchvision's strided temporal conv.
    ((1, 9, 20, 20, 3), (1, 7, 7), (1, 2, 2), "VALID"),  # torchvision's strided spatial conv.
    ((1, 8, 9, 9, 4), (3, 3, 3), (1, 1, 1), "SAME"),     # A full 3x3x3 (I3D's).
    ((1, 8, 9, 9, 4), (1, 1, 1), (2, 1, 1), "SAME"),     # Stride in time only.
])
def test_values_and_gradients_equal_tf_conv3d(shape, kernel, strides, padding):
  rng = np.random.RandomState(0)
  x = tf.constant(rng.rand(*shape).astype("float32"))
  weights = tf.Variable(rng.randn(*kernel, shape[-1], 5).astype("float32"))
  reference = tf.nn.conv3d(x, weights, (1,) + strides + (1,), padding)
  probe = tf.constant(rng.randn(*reference.shape).astype("float32"))

  def value_and_grads(fn):
    with tf.GradientTape(persistent=True) as tape:
      tape.watch(x)
      y = fn()
      loss = tf.reduce_sum(y * probe)
    return y, tape.gradient(loss, weights), tape.gradient(loss, x)

  y_ref, dk_ref, dx_ref = value_and_grads(
      lambda: tf.nn.conv3d(x, weights, (1,) + strides + (1,), padding))
  y, dk, dx = value_and_grads(lambda: conv3d_as_conv2d(x, weights, strides, padding))
  assert y.shape == y_ref.shape
  np.testing.assert_allclose(y, y_ref, rtol=1e-5, atol=1e-4)
  np.testing.assert_allclose(dk, dk_ref, rtol=1e-4, atol=1e-3)
  np.testing.assert_allclose(dx, dx_ref, rtol=1e-4, atol=1e-4)


def test_layer_matches_keras_conv3d_with_unknown_sizes():
  layer = FrameConv3D(4, (3, 7, 7), strides=2, padding="same", use_bias=True)
  stock = keras.layers.Conv3D(4, (3, 7, 7), strides=2, padding="same", use_bias=True)
  x = np.random.RandomState(1).rand(1, 8, 20, 20, 3).astype("float32")
  layer.build(x.shape)
  stock.build(x.shape)
  layer.set_weights([w + 0.1 for w in stock.get_weights()])
  stock.set_weights(layer.get_weights())
  fn = tf.function(lambda v: layer(v), input_signature=[tf.TensorSpec((None,) * 4 + (3,))])
  np.testing.assert_allclose(fn(x), stock(x), rtol=1e-5, atol=1e-5)


def test_bfloat16_layer_stays_close_to_float32():
  policy_layer = FrameConv3D(8, (1, 3, 3), padding="same", dtype="mixed_bfloat16")
  stock = keras.layers.Conv3D(8, (1, 3, 3), padding="same")
  x = np.random.RandomState(2).rand(2, 4, 10, 10, 6).astype("float32")
  policy_layer.build(x.shape)
  stock.build(x.shape)
  policy_layer.set_weights(stock.get_weights())
  y = policy_layer(x)
  assert y.dtype == "bfloat16"
  np.testing.assert_allclose(tf.cast(y, tf.float32), stock(x), rtol=0.05, atol=0.05)


@pytest.mark.parametrize("shape,pool,strides,padding", [
    ((2, 8, 9, 9, 4), (3, 3, 3), (1, 1, 1), "SAME"),   # Every Inception block's Branch_3.
    ((2, 8, 15, 16, 3), (1, 3, 3), (1, 2, 2), "SAME"),  # MaxPool_2a / 3a.
    ((1, 7, 9, 9, 2), (3, 3, 3), (2, 2, 2), "SAME"),   # MaxPool_4a, odd sizes.
    ((1, 5, 7, 7, 2), (2, 2, 2), (2, 2, 2), "SAME"),   # MaxPool_5a.
    ((1, 9, 11, 11, 2), (3, 3, 3), (2, 2, 2), "VALID"),  # torchvision's, after its own pads.
    ((2, 1, 4, 4, 3), (3, 3, 3), (1, 1, 1), "SAME"),   # A single frame.
])
def test_max_pool_values_and_gradients_equal_tf_max_pool3d(shape, pool, strides, padding):
  # Distinct values: with ties TF's 3D gradient feeds every maximum, the 2D pools one.
  rng = np.random.RandomState(0)
  x = tf.constant(rng.permutation(np.prod(shape)).reshape(shape).astype("float32"))
  reference = tf.nn.max_pool3d(x, (1,) + pool + (1,), (1,) + strides + (1,), padding)
  probe = tf.constant(rng.randn(*reference.shape).astype("float32"))

  def value_and_grad(fn):
    with tf.GradientTape() as tape:
      tape.watch(x)
      y = fn()
      loss = tf.reduce_sum(y * probe)
    return y, tape.gradient(loss, x)

  y_ref, dx_ref = value_and_grad(
      lambda: tf.nn.max_pool3d(x, (1,) + pool + (1,), (1,) + strides + (1,), padding))
  y, dx = value_and_grad(lambda: max_pool3d_as_pool2d(x, pool, strides, padding))
  np.testing.assert_array_equal(y, y_ref)
  np.testing.assert_allclose(dx, dx_ref, rtol=1e-6, atol=1e-6)


def test_max_pool_layer_matches_keras_with_unknown_sizes():
  layer = FrameMaxPooling3D((3, 3, 3), strides=(2, 2, 2), padding="same")
  stock = keras.layers.MaxPooling3D((3, 3, 3), strides=(2, 2, 2), padding="same")
  x = np.random.RandomState(3).randn(2, 7, 10, 9, 3).astype("float32")
  fn = tf.function(lambda v: layer(v), input_signature=[tf.TensorSpec((None,) * 4 + (3,))])
  np.testing.assert_array_equal(fn(x), stock(x))
  assert keras.layers.deserialize(keras.layers.serialize(layer)).get_config() == layer.get_config()


def test_max_pool_gradient_at_ties_goes_to_one_maximum():
  # TF's CPU MaxPool3DGrad feeds every tied maximum (a window of two 1s passes 2 back for a
  # slope of 1); the 2D pools, like cuDNN, feed one, which is a true subgradient.
  x = tf.constant([1.0, 1.0, 0.5])[None, None, None, :, None]

  def grad(fn):
    with tf.GradientTape() as tape:
      tape.watch(x)
      y = tf.reduce_sum(fn(x))
    return tape.gradient(y, x).numpy().ravel()

  np.testing.assert_array_equal(
      grad(lambda v: max_pool3d_as_pool2d(v, (1, 1, 3), (1, 1, 3), "VALID")), [1, 0, 0])
  np.testing.assert_array_equal(
      grad(lambda v: tf.nn.max_pool3d(v, (1, 1, 1, 3, 1), (1, 1, 1, 3, 1), "VALID")), [1, 1, 0])


def _use_tf_3d_ops(monkeypatch):
  """Today's stock ops everywhere: Keras' Conv3D, 3D max pools and Keras' batch norm."""
  monkeypatch.setattr(frame_ops, "_use_frame_ops", lambda: False)
  monkeypatch.setattr(FusedBatchNormalization, "call", keras.layers.BatchNormalization.call)


@pytest.mark.parametrize("training", [False, True])
@pytest.mark.parametrize("variant", ["slim", "torchvision"])
def test_s3dg_endpoints_equal_those_of_tf_3d_ops(variant, training, monkeypatch):
  keras.utils.set_random_seed(0)
  backbone = S3DGBackbone(depth_multiplier=0.125, variant=variant)
  x = tf.random.stateless_uniform((2, 8, 32, 32, 3), (1, 2), -1.0, 1.0)
  fast = tf.function(lambda: backbone(x, training=training))()
  _use_tf_3d_ops(monkeypatch)
  stock = tf.function(lambda: backbone(x, training=training))()
  # In training, batch norm over the 2 to 16 values per channel of the last blocks' maps (a 32-px
  # clip) amplifies rounding without bound: compare those in inference only.
  names = ENDPOINTS[:ENDPOINTS.index("Mixed_3c") + 1] if training else ENDPOINTS
  for name in names:
    scale = float(np.abs(stock[name]).max()) + 1e-12
    np.testing.assert_allclose(fast[name] / scale, stock[name] / scale, atol=1e-4, err_msg=name)


@pytest.mark.parametrize("variant", ["slim", "torchvision"])
def test_s3dg_training_gradients_equal_those_of_tf_3d_ops(variant, monkeypatch):
  """The network up to its second max pool, whose inputs hold no tied maxima but a ReLU's zeros.

  Deeper, a max pool sees the equal values an earlier overlapping pool copied: rounding then
  decides which of them takes the gradient, in any two formulations (and TF's 3D pool feeds all).
  """
  keras.utils.set_random_seed(0)
  backbone = S3DGBackbone(depth_multiplier=0.125, variant=variant, final_endpoint="Conv2d_2c_3x3")
  x = tf.random.stateless_uniform((2, 8, 32, 32, 3), (1, 2), -1.0, 1.0)
  probe = tf.random.stateless_normal((2, 4, 8, 8, 24), (3, 4))

  def grads():
    with tf.GradientTape() as tape:
      loss = tf.reduce_sum(backbone(x, training=True)["Conv2d_2c_3x3"] * probe)
    return tape.gradient(loss, backbone.trainable_weights)

  state = [w.numpy() for w in backbone.non_trainable_weights]
  fast = tf.function(grads)()
  for w, value in zip(backbone.non_trainable_weights, state):
    w.assign(value)  # Both passes start from the same batch-norm statistics.
  _use_tf_3d_ops(monkeypatch)
  stock = tf.function(grads)()
  for weight, a, b in zip(backbone.trainable_weights, fast, stock):
    scale = float(np.abs(b).max()) + 1e-12
    np.testing.assert_allclose(a / scale, b / scale, atol=1e-3, err_msg=weight.path)


def test_bfloat16_conv_gradients_are_close_to_float32():
  rng = np.random.RandomState(4)
  x = tf.constant(rng.rand(2, 6, 10, 10, 4).astype("float32"))
  kernel = tf.constant(rng.randn(3, 3, 3, 4, 5).astype("float32") * 0.1)

  def grads(dtype):
    xs, ks = tf.cast(x, dtype), tf.cast(kernel, dtype)
    with tf.GradientTape() as tape:
      tape.watch([xs, ks])
      loss = tf.reduce_sum(tf.cast(conv3d_as_conv2d(xs, ks, (1, 2, 2), "SAME"), tf.float32))
    return [tf.cast(g, tf.float32) for g in tape.gradient(loss, [xs, ks])]

  for bf16, fp32 in zip(grads(tf.bfloat16), grads(tf.float32)):
    assert bf16.dtype == tf.float32
    np.testing.assert_allclose(bf16, fp32, rtol=0.02, atol=0.05 * float(np.abs(fp32).max()))
