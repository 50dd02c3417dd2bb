"""`python -m d3d_tf.convert_weights`: a converted file every tool loads; one-line errors."""

import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from d3d_tf.models import S3DGBackbone, S3DGClassifier
from d3d_tf.weights import recipes
from d3d_tf.weights.slim_checkpoint import save_slim_checkpoint, write_name_based_checkpoint

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _convert(*args):
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=REPO)
  return subprocess.run([sys.executable, "-m", "d3d_tf.convert_weights", *args], cwd=REPO,
                        env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
  directory = tmp_path_factory.mktemp("slim")
  keras.utils.set_random_seed(0)
  model = S3DGClassifier(S3DGBackbone(input_channels=2, depth_multiplier=0.125), 400)
  return model, save_slim_checkpoint(model, str(directory / "model.ckpt"),
                                     {"global_step": np.int64(7)})


def test_converts_a_400_class_flow_checkpoint_with_the_kinetics_label_map(checkpoint, tmp_path):
  model, prefix = checkpoint
  output = str(tmp_path / "out" / "flow.keras")
  result = _convert("--source=slim", f"--checkpoint={prefix}", f"--output={output}")
  assert result.returncode == 0, result.stderr[-2000:]
  assert "input_channels=2" in result.stdout and "400 classes" in result.stdout
  converted = keras.saving.load_model(output)
  clip = np.random.default_rng(0).uniform(-1, 1, (1, 8, 32, 32, 2)).astype(np.float32)
  np.testing.assert_allclose(converted(clip, training=False), model(clip, training=False),
                             atol=1e-5)
  with open(tmp_path / "out" / "label_map.txt", encoding="utf-8") as f:
    lines = f.read().splitlines()
  assert len(lines) == 400 and lines[0] == "0 abseiling" and lines[-1] == "399 zumba"
  # The release's test geometry and the class names travel in the .keras file.
  geometry = converted.clip_geometry
  assert (geometry.num_frames, geometry.crop_size, geometry.crop_fraction) == (64, 224, 1.0)
  assert geometry.modality == "flow" and geometry.labels[-1] == "zumba"
  assert (geometry.flow_algorithm, geometry.flow_bound) == ("tvl1", 20.0)  # The release's.
  assert "clips: 64 frames x 224 px" in result.stdout
  # The release's evaluation recipe, with TV-L1 records for this flow model.
  assert recipes.format_recipe("slim", output, flow=True) in result.stdout
  assert "--flow=tvl1" in result.stdout and "--num_frames=64" in result.stdout


def _inception_v1_2d(path):
  return write_name_based_checkpoint(
      path, {"InceptionV1/Conv2d_1a_7x7/weights": np.zeros((7, 7, 3, 64), np.float32)})


def _truncated(path, checkpoint):
  model, _ = checkpoint
  prefix = save_slim_checkpoint(model, path)
  data = prefix + ".data-00000-of-00001"
  with open(data, "r+b") as f:
    f.truncate(os.path.getsize(data) // 2)
  return prefix


@pytest.mark.parametrize("make,message", [
    (lambda p, c: p, "no TF checkpoint index"),
    (lambda p, c: _inception_v1_2d(p), "2D Inception-v1, not S3D-G"),
    (_truncated, "truncated or damaged"),
])
def test_bad_checkpoints_one_line_exit_2(checkpoint, tmp_path, make, message):
  prefix = make(str(tmp_path / "bad.ckpt"), checkpoint)
  result = _convert("--source=slim", f"--checkpoint={prefix}",
                    f"--output={tmp_path / 'x.keras'}")
  assert result.returncode == 2
  last = result.stderr.strip().splitlines()[-1]
  assert last.startswith("convert_weights: error: ") and message in last
  assert "Traceback" not in result.stderr and prefix.split("/")[-1] in last


def test_bad_flags_and_missing_torch_file(tmp_path):
  result = _convert("--source=slim", "--checkpoint=x", "--output=x.h5")
  assert result.returncode != 0 and "--output must end with .keras" in result.stderr
  result = _convert("--source=torchvision", f"--checkpoint={tmp_path / 'none.pth'}",
                    f"--output={tmp_path / 'x.keras'}")
  assert result.returncode == 2 and "does not exist" in result.stderr.strip().splitlines()[-1]
