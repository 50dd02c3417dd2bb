"""The fused batch norm trains exactly like Keras' own: outputs, gradients, moving statistics."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from d3d_tf.models.fused_batch_norm import FusedBatchNormalization


def _pair(scale, dtype="float32"):
  kwargs = dict(momentum=0.9, epsilon=1e-3, scale=scale, center=True, dtype=dtype)
  return FusedBatchNormalization(**kwargs), keras.layers.BatchNormalization(**kwargs)


def _train_once(layer, x, probe):
  with tf.GradientTape() as tape:
    tape.watch(x)
    y = layer(x, training=True)
    loss = tf.reduce_sum(tf.cast(y, tf.float32) * probe)
  grads = tape.gradient(loss, [x] + layer.trainable_weights)
  return y, grads


@pytest.mark.parametrize("shape,scale", [
    ((2, 3, 5, 6, 4), False),  # S3D-G (slim): no gamma, 5D.
    ((2, 3, 5, 6, 4), True),   # torchvision's S3D: a gamma.
    ((3, 7, 7, 8), True),      # 4D.
])
def test_training_step_equals_keras_batch_norm(shape, scale):
  rng = np.random.RandomState(0)
  fused, stock = _pair(scale)
  fused.build(shape)
  stock.build(shape)
  weights = [w + rng.rand(*w.shape).astype("float32") for w in stock.get_weights()]
  fused.set_weights(weights)
  stock.set_weights(weights)
  x = tf.constant(rng.randn(*shape).astype("float32") * 3 + 1)
  probe = tf.constant(rng.randn(*shape).astype("float32"))
  y_fused, g_fused = _train_once(fused, x, probe)
  y_stock, g_stock = _train_once(stock, x, probe)
  np.testing.assert_allclose(y_fused, y_stock, rtol=1e-5, atol=1e-5)
  for a, b in zip(g_fused, g_stock):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)
  for a, b in zip(fused.non_trainable_weights, stock.non_trainable_weights):
    assert a.name == b.name
    np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(
      fused(x, training=False), stock(x, training=False), rtol=1e-5, atol=1e-5)


def test_bfloat16_training_stays_close_and_returns_bfloat16():
  rng = np.random.RandomState(1)
  fused, _ = _pair(False, "mixed_bfloat16")
  stock = keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-3, scale=False)
  shape = (2, 4, 6, 6, 8)
  fused.build(shape)
  stock.build(shape)
  x = rng.randn(*shape).astype("float32")
  y = fused(tf.cast(x, tf.bfloat16), training=True)
  assert y.dtype == tf.bfloat16
  np.testing.assert_allclose(tf.cast(y, tf.float32), stock(x, training=True), atol=0.05)
  np.testing.assert_allclose(fused.moving_mean.numpy(), stock.moving_mean.numpy(), atol=1e-2)


def test_serializes_and_keeps_keras_weight_names():
  layer = FusedBatchNormalization(momentum=0.5, scale=False, name="bn")
  layer.build((None, 4, 4, 4, 3))
  clone = keras.layers.deserialize(keras.layers.serialize(layer))
  assert type(clone) is FusedBatchNormalization and clone.momentum == 0.5
  assert [w.path for w in layer.weights] == ["bn/beta", "bn/moving_mean", "bn/moving_variance"]
