"""S3D-G backbone and classifier: reference structure, counts, shapes, serialization, learning."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from d3d_tf.models import ENDPOINTS, LogitsPool3D, S3DGBackbone, S3DGClassifier, STConv3D


def _trainable_count(model):
  return sum(int(np.prod(v.shape)) for v in model.trainable_weights)


def _hand_count(input_channels, num_classes, gating):
  """Trainable parameters of s3dg.py's network, derived from its channel table by hand.

  BN (slim, scale=False) adds a beta per channel and replaces the conv bias. A separable tx3x3
  unit is a 1x3x3 conv + beta, then a 3x1x1 conv + bias (no BN). Gating adds a CxC matrix after
  Conv2d_2c_3x3 and after the last conv of every branch of every Inception block.
  """
  def conv_bn(k, cin, cout):
    return k * cin * cout + cout

  def separable(cin, cout):
    return conv_bn(9, cin, cout) + 3 * cout * cout + cout

  total = conv_bn(3 * 7 * 7, input_channels, 64)  # Conv2d_1a_7x7, 3x7x7, stride 2.
  total += conv_bn(1, 64, 64)  # Conv2d_2b_1x1.
  total += separable(64, 192) + (192 * 192 if gating else 0)  # Conv2d_2c_3x3.
  table = [  # Input channels, then b0, b1a, b1b, b2a, b2b, b3b (s3dg.py).
      (192, 64, 96, 128, 16, 32, 32), (256, 128, 128, 192, 32, 96, 64),
      (480, 192, 96, 208, 16, 48, 64), (512, 160, 112, 224, 24, 64, 64),
      (512, 128, 128, 256, 24, 64, 64), (512, 112, 144, 288, 32, 64, 64),
      (528, 256, 160, 320, 32, 128, 128), (832, 256, 160, 320, 32, 128, 128),
      (832, 384, 192, 384, 48, 128, 128)]
  for cin, b0, b1a, b1b, b2a, b2b, b3b in table:
    total += conv_bn(1, cin, b0) + conv_bn(1, cin, b1a) + separable(b1a, b1b)
    total += conv_bn(1, cin, b2a) + separable(b2a, b2b) + conv_bn(1, cin, b3b)
    if gating:
      total += b0 * b0 + b1b * b1b + b2b * b2b + b3b * b3b
  total += 1024 * num_classes + num_classes  # Logits/Conv2d_0c_1x1 with bias.
  return total


@pytest.mark.parametrize("input_channels,gating,expected", [
    (3, True, 9_518_848),   # S3D-G on RGB.
    (2, True, 9_509_440),   # S3D-G on flow: one input channel fewer in the 3x7x7 conv.
    (3, False, 8_299_520),  # S3D (no gating).
])
def test_full_size_trainable_parameters_match_the_hand_count(input_channels, gating, expected):
  model = S3DGClassifier(S3DGBackbone(input_channels=input_channels, gating=gating), 400)
  assert _hand_count(input_channels, 400, gating) == expected
  assert _trainable_count(model) == expected


def test_endpoint_shapes_for_64x224x224_match_the_reference():
  backbone = S3DGBackbone()
  spec = backbone.compute_output_spec(keras.KerasTensor((1, 64, 224, 224, 3)))
  shapes = {name: tuple(spec[name].shape) for name in ENDPOINTS}
  # The shape comments of s3dg.py.
  assert shapes["Conv2d_1a_7x7"] == (1, 32, 112, 112, 64)
  assert shapes["MaxPool_2a_3x3"] == (1, 32, 56, 56, 64)
  assert shapes["Conv2d_2c_3x3"] == (1, 32, 56, 56, 192)
  assert shapes["MaxPool_3a_3x3"] == (1, 32, 28, 28, 192)
  assert shapes["Mixed_3b"] == (1, 32, 28, 28, 256)
  assert shapes["Mixed_3c"] == (1, 32, 28, 28, 480)
  assert shapes["Mixed_4b"] == (1, 16, 14, 14, 512)
  assert shapes["Mixed_4e"] == (1, 16, 14, 14, 528)
  assert shapes["Mixed_4f"] == (1, 16, 14, 14, 832)
  assert shapes["Mixed_5b"] == (1, 8, 7, 7, 832)
  assert shapes["Mixed_5c"] == (1, 8, 7, 7, 1024)


def test_reference_structure_of_bn_bias_and_gating():
  backbone = S3DGBackbone(depth_multiplier=0.25)
  paths = {v.path for v in backbone.weights}
  # Full first conv: no bias, BN beta only (slim's batch_norm has no gamma by default).
  assert "Conv2d_1a_7x7/conv/kernel" in paths and "Conv2d_1a_7x7/bn/beta" in paths
  assert "Conv2d_1a_7x7/bn/gamma" not in paths and "Conv2d_1a_7x7/conv/bias" not in paths
  # Separable unit: temporal conv carries a bias and no BN.
  assert "Mixed_4b/Branch_1_Conv2d_0b_3x3/conv_temporal/bias" in paths
  assert not any(p.startswith("Mixed_4b/Branch_1_Conv2d_0b_3x3/bn_temporal") for p in paths)
  # Gating after Conv2d_2c_3x3 and after the last conv of all four branches.
  for branch in ("Branch_0_Conv2d_0a_1x1", "Branch_1_Conv2d_0b_3x3", "Branch_2_Conv2d_0b_3x3",
                 "Branch_3_Conv2d_0b_1x1"):
    assert f"Mixed_5c/{branch}/self_gating/kernel" in paths
  assert "Mixed_5c/Branch_1_Conv2d_0a_1x1/self_gating/kernel" not in paths
  assert "Conv2d_2c_3x3/self_gating/kernel" in paths
  bn = backbone.get_layer("Conv2d_1a_7x7").bn
  assert bn.momentum == 0.999 and bn.epsilon == 1e-3
  # The temporal kernel starts as the identity in time.
  kernel = backbone.get_layer("Conv2d_2c_3x3").conv_temporal.kernel.numpy()
  assert np.array_equal(kernel[1, 0, 0], np.eye(kernel.shape[-1]))
  assert not kernel[0].any() and not kernel[2].any()


def test_startat_and_gating_switches():
  backbone = S3DGBackbone(depth_multiplier=0.25, temporal_conv_startat="Mixed_4b",
                          gating_startat="Mixed_5b")
  assert backbone.get_layer("Mixed_3c").temporal_kernel_size == 1
  assert backbone.get_layer("Mixed_4b").temporal_kernel_size == 3
  assert not backbone.get_layer("Mixed_4f").gating and backbone.get_layer("Mixed_5b").gating
  plain = S3DGBackbone(depth_multiplier=0.25, gating=False)
  assert not any("self_gating" in v.path for v in plain.weights)


def test_depth_multiplier_and_min_depth():
  backbone = S3DGBackbone(depth_multiplier=0.125, min_depth=16)
  # Mixed_5c: max(int(384 / 8), 16) + max(48, 16) + max(16, 16) + max(16, 16).
  assert backbone.output["Mixed_5c"].shape[-1] == 48 + 48 + 16 + 16
  assert backbone.output["Conv2d_1a_7x7"].shape[-1] == 16


@pytest.mark.parametrize("kwargs,message", [
    ({"depth_multiplier": -1}, "depth_multiplier=-1"),
    ({"first_temporal_kernel_size": 4}, "first_temporal_kernel_size=4"),
    ({"final_endpoint": "Mixed_9z"}, "final_endpoint='Mixed_9z'"),
    ({"gating_startat": "MaxPool_4a_3x3"}, "gating_startat='MaxPool_4a_3x3'"),
])
def test_bad_arguments_name_the_argument(kwargs, message):
  with pytest.raises(ValueError, match=message):
    S3DGBackbone(**kwargs)


def test_final_endpoint_truncates_the_outputs():
  backbone = S3DGBackbone(depth_multiplier=0.125, final_endpoint="Mixed_4f")
  assert list(backbone.output) == list(ENDPOINTS[:ENDPOINTS.index("Mixed_4f") + 1])


@pytest.fixture(scope="module")
def tiny_classifier():
  keras.utils.set_random_seed(0)
  return S3DGClassifier(S3DGBackbone(depth_multiplier=0.125), num_classes=5)


@pytest.mark.parametrize("shape", [(2, 1, 32, 32, 3), (2, 5, 40, 56, 3), (1, 16, 64, 64, 3)])
def test_any_length_and_size_gives_logits(tiny_classifier, shape):
  logits = tiny_classifier(np.random.uniform(-1, 1, shape).astype("float32"), training=False)
  assert logits.shape == (shape[0], 5)
  assert np.all(np.isfinite(logits))


def test_dynamic_shape_head_equals_static_head(tiny_classifier):
  """A serving graph with unknown T, H, W computes the same logits as the exact pool."""
  clip = np.random.RandomState(1).uniform(-1, 1, (2, 16, 64, 64, 3)).astype("float32")
  static = tiny_classifier(clip, training=False)
  dynamic_fn = tf.function(
      lambda x: tiny_classifier(x, training=False),
      input_signature=[tf.TensorSpec((None, None, None, None, 3), tf.float32)])
  np.testing.assert_allclose(dynamic_fn(clip), static, rtol=1e-4, atol=1e-5)


def test_logits_pool_weights_equal_pool_then_mean():
  x = np.random.RandomState(2).rand(1, 5, 9, 3, 4).astype("float32")
  pool = LogitsPool3D((2, 7, 7))
  exact = np.mean(pool(x), axis=(1, 2, 3))
  dynamic = tf.function(pool, input_signature=[tf.TensorSpec((None,) * 4 + (4,), tf.float32)])
  np.testing.assert_allclose(np.mean(dynamic(x), axis=(1, 2, 3)), exact, rtol=1e-5)


def test_flow_input(tiny_classifier):
  model = S3DGClassifier(S3DGBackbone(input_channels=2, depth_multiplier=0.125), num_classes=3)
  assert model(np.zeros((1, 8, 32, 32, 2), "float32")).shape == (1, 3)


def test_torchvision_layout_unit_puts_bn_after_the_temporal_conv():
  unit = STConv3D(8, (3, 3, 3), separable=True, temporal_batch_norm=True)
  unit.build((None, 4, 8, 8, 4))
  names = {v.path.split("/", 1)[1] for v in unit.weights}
  assert "bn_temporal/beta" in names and "conv_temporal/bias" not in names


def test_save_and_load_round_trip(tmp_path, tiny_classifier):
  clip = np.random.RandomState(3).uniform(-1, 1, (2, 8, 32, 32, 3)).astype("float32")
  path = os.path.join(tmp_path, "model.keras")
  tiny_classifier.save(path)
  loaded = keras.models.load_model(path)
  assert isinstance(loaded, S3DGClassifier) and isinstance(loaded.backbone, S3DGBackbone)
  assert loaded.get_config()["backbone"]["config"] == tiny_classifier.backbone.get_config()
  np.testing.assert_allclose(loaded(clip, training=False), tiny_classifier(clip, training=False),
                             rtol=1e-5, atol=1e-6)


def test_backbone_config_round_trip_is_exactly_the_arguments():
  backbone = S3DGBackbone(input_channels=2, gating=False, depth_multiplier=0.5,
                          final_endpoint="Mixed_4c", name="flow_backbone")
  config = backbone.get_config()
  rebuilt = S3DGBackbone.from_config(config)
  assert rebuilt.get_config() == config
  assert config["input_channels"] == 2 and config["final_endpoint"] == "Mixed_4c"


def test_predict_on_a_tf_data_dataset(tiny_classifier):
  clips = np.random.RandomState(4).uniform(-1, 1, (4, 8, 32, 32, 3)).astype("float32")
  dataset = tf.data.Dataset.from_tensor_slices(clips).batch(2)
  assert tiny_classifier.predict(dataset, verbose=0).shape == (4, 5)


def test_tiny_model_overfits_eight_clips():
  keras.utils.set_random_seed(1)
  rng = np.random.RandomState(5)
  clips = rng.uniform(-1, 1, (8, 8, 32, 32, 3)).astype("float32")
  labels = np.arange(8) % 4
  model = S3DGClassifier(S3DGBackbone(depth_multiplier=0.125), num_classes=4,
                         dropout_keep_prob=1.0)
  model.compile(optimizer=keras.optimizers.Adam(3e-3),
                loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                metrics=["accuracy"], jit_compile=False)
  history = model.fit(clips, labels, batch_size=8, epochs=25, verbose=0)
  assert history.history["loss"][-1] < 0.2 * history.history["loss"][0]
  assert history.history["accuracy"][-1] == 1.0


def test_tf_train_checkpoint_restores_every_weight(tmp_path, tiny_classifier):
  """The trainer checkpoints with tf.train.Checkpoint: batch-norm statistics included."""
  for weight in tiny_classifier.non_trainable_weights:
    weight.assign(np.full(weight.shape, 0.5, "float32"))
  path = tf.train.Checkpoint(model=tiny_classifier).save(str(tmp_path / "ckpt"))
  keras.utils.set_random_seed(7)
  fresh = S3DGClassifier(S3DGBackbone(depth_multiplier=0.125), num_classes=5)
  tf.train.Checkpoint(model=fresh).restore(path).assert_existing_objects_matched()
  assert len(fresh.weights) == len(tiny_classifier.weights)
  for restored, saved in zip(fresh.weights, tiny_classifier.weights):
    np.testing.assert_array_equal(restored.numpy(), saved.numpy(), err_msg=saved.path)
