"""TF-Slim checkpoints: architecture from shapes, training state ignored, clear errors."""

import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from d3d_tf.models import S3DGBackbone, S3DGClassifier
from d3d_tf.weights import WeightsError, load_slim_classifier
from d3d_tf.weights.slim_checkpoint import (
    save_slim_checkpoint, slim_tensors, write_name_based_checkpoint)

CLIP = np.random.default_rng(0).uniform(-1, 1, (2, 8, 32, 32, 3)).astype(np.float32)


def _randomise(model, seed=0):
  rng = np.random.default_rng(seed)
  for variable in model.weights:
    if "moving_variance" in variable.path:
      variable.assign(rng.uniform(0.5, 1.5, variable.shape))
    else:
      variable.assign(rng.normal(0, 0.1, variable.shape))
  return model


@pytest.mark.parametrize("kwargs", [
    {},  # S3D-G, RGB.
    {"input_channels": 2, "gating": False, "first_temporal_kernel_size": 7,
     "temporal_conv_startat": "Mixed_3b"},  # Plain S3D on flow, later temporal convs.
    {"gating_startat": "Mixed_4b", "final_endpoint": "Mixed_4f"},
])
def test_round_trip_reads_the_architecture_from_shapes(tmp_path, kwargs):
  backbone = S3DGBackbone(depth_multiplier=0.125, **kwargs)
  model = _randomise(S3DGClassifier(backbone, 6))
  prefix = save_slim_checkpoint(model, str(tmp_path / "model.ckpt"))
  loaded, info = load_slim_classifier(prefix)
  assert info["num_classes"] == 6
  config = loaded.backbone.get_config()
  for key, value in backbone.get_config().items():
    if key not in ("name", "dtype"):
      assert config[key] == value, key
  clip = CLIP[..., :backbone.input_channels]
  np.testing.assert_allclose(loaded(clip, training=False), model(clip, training=False),
                             atol=1e-5)


def test_training_state_is_ignored_and_ema_is_chosen_by_flag(tmp_path):
  model = _randomise(S3DGClassifier(S3DGBackbone(depth_multiplier=0.125), 4))
  extra = {"global_step": np.int64(1234), "InceptionV1/Logits/Conv2d_0c_1x1/biases/Momentum":
           np.ones(4, np.float32)}
  for name, value in slim_tensors(model).items():
    extra[name + "/ExponentialMovingAverage"] = value + 0.01
  prefix = save_slim_checkpoint(model, str(tmp_path / "model.ckpt"), extra)
  raw, info = load_slim_classifier(prefix)
  assert info["ema_available"] and not info["used_ema"]
  shadow, _ = load_slim_classifier(prefix, use_ema=True)
  bias = "Logits_Conv2d_0c_1x1"
  np.testing.assert_allclose(raw.get_layer(bias).bias, model.get_layer(bias).bias)
  np.testing.assert_allclose(shadow.get_layer(bias).bias, model.get_layer(bias).bias + 0.01,
                             rtol=1e-6)


def test_2d_inception_v1_is_told_apart(tmp_path):
  prefix = write_name_based_checkpoint(str(tmp_path / "inception_v1.ckpt"), {
      "InceptionV1/Conv2d_1a_7x7/weights": np.zeros((7, 7, 3, 64), np.float32),
      "InceptionV1/Mixed_3b/Branch_0/Conv2d_0a_1x1/weights": np.zeros((1, 1, 192, 64),
                                                                       np.float32)})
  with pytest.raises(WeightsError, match="2D Inception-v1, not S3D-G"):
    load_slim_classifier(prefix)


def test_unused_and_misshapen_tensors_are_named(tmp_path):
  model = S3DGClassifier(S3DGBackbone(depth_multiplier=0.125), 4)
  prefix = save_slim_checkpoint(model, str(tmp_path / "extra.ckpt"), {
      "InceptionV1/Mixed_3b/Branch_9/Conv2d_0a_1x1/weights": np.zeros((1, 1, 1, 2, 2),
                                                                       np.float32)})
  with pytest.raises(WeightsError, match="'InceptionV1/Mixed_3b/Branch_9/Conv2d_0a_1x1/weights' "
                     "has no place"):
    load_slim_classifier(prefix)
  bad = save_slim_checkpoint(model, str(tmp_path / "bad.ckpt"), {
      "InceptionV1/Conv2d_2b_1x1/BatchNorm/beta": np.zeros(7, np.float32)})
  with pytest.raises(WeightsError, match="'InceptionV1/Conv2d_2b_1x1/BatchNorm/beta' has shape"):
    load_slim_classifier(bad)


def test_missing_index_and_truncated_data_name_the_file(tmp_path):
  with pytest.raises(WeightsError, match="no TF checkpoint index"):
    load_slim_classifier(str(tmp_path / "nothing.ckpt"))
  model = S3DGClassifier(S3DGBackbone(depth_multiplier=0.125), 4)
  prefix = save_slim_checkpoint(model, str(tmp_path / "model.ckpt"))
  data = prefix + ".data-00000-of-00001"
  with open(data, "r+b") as f:
    f.truncate(os.path.getsize(data) // 3)
  with pytest.raises(WeightsError, match="truncated or damaged"):
    load_slim_classifier(prefix)


def test_converted_file_loads_after_plain_import(tmp_path):
  model = S3DGClassifier(S3DGBackbone(depth_multiplier=0.125), 4)
  path = str(tmp_path / "m.keras")
  model.save(path)
  code = ("import d3d_tf, keras; m = keras.models.load_model(%r); print(type(m).__name__)" % path)
  out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=300, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
  assert out.stdout.strip().splitlines()[-1] == "S3DGClassifier", out.stderr[-2000:]
  assert keras.saving.load_model(path).count_params() == model.count_params()
