"""The CPU-friendly strided conv equals TF's strided SAME conv, forward and backward."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from d3d_tf.models.strided_conv import StridedConv3D, strided_conv3d_same


@pytest.mark.parametrize("shape,strides", [
    ((2, 8, 32, 32, 3), (2, 2, 2)),   # The first S3D-G conv.
    ((1, 7, 33, 31, 2), (2, 2, 2)),   # Odd sizes pad differently before and after.
    ((2, 1, 16, 16, 3), (2, 2, 2)),   # A single frame.
    ((1, 6, 12, 12, 3), (1, 2, 2)),   # Stride in space only.
])
def test_values_and_gradients_equal_tf_conv3d(shape, strides):
  rng = np.random.RandomState(0)
  x = tf.constant(rng.rand(*shape).astype("float32"))
  kernel = tf.Variable(rng.randn(3, 7, 7, shape[-1], 4).astype("float32"))
  reference = tf.nn.conv3d(x, kernel, (1,) + strides + (1,), "SAME")
  weights = tf.constant(rng.randn(*reference.shape).astype("float32"))

  def value_and_grads(fn):
    with tf.GradientTape(persistent=True) as tape:
      tape.watch(x)
      y = fn()
      loss = tf.reduce_sum(y * weights)
    return y, tape.gradient(loss, kernel), tape.gradient(loss, x)

  y_ref, dk_ref, dx_ref = value_and_grads(
      lambda: tf.nn.conv3d(x, kernel, (1,) + strides + (1,), "SAME"))
  y, dk, dx = value_and_grads(lambda: strided_conv3d_same(x, kernel, strides))
  np.testing.assert_allclose(y, y_ref, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(dk, dk_ref, rtol=1e-4, atol=1e-3)
  np.testing.assert_allclose(dx, dx_ref, rtol=1e-4, atol=1e-4)


def test_layer_matches_keras_conv3d_with_the_same_weights():
  layer = StridedConv3D(4, (3, 7, 7), strides=2, padding="same", use_bias=False)
  stock = keras.layers.Conv3D(4, (3, 7, 7), strides=2, padding="same", use_bias=False)
  x = np.random.RandomState(1).rand(1, 8, 20, 20, 3).astype("float32")
  layer.build(x.shape)
  stock.build(x.shape)
  stock.set_weights(layer.get_weights())
  fn = tf.function(lambda v: layer(v), input_signature=[tf.TensorSpec((None,) * 4 + (3,))])
  np.testing.assert_allclose(fn(x), stock(x), rtol=1e-5, atol=1e-5)
