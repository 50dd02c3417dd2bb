"""Teachers load from a .keras file, a model dir or a SavedModel, and are checked up front."""

import os

import numpy as np
import pytest

from d3d_tf.models import S3DGBackbone, S3DGClassifier
from d3d_tf.training import teachers


@pytest.fixture(scope="module")
def flow_and_rgb(tmp_path_factory):
  root = tmp_path_factory.mktemp("teachers")
  paths = {}
  for name, channels in (("flow", 2), ("rgb", 3)):
    model = S3DGClassifier(S3DGBackbone(input_channels=channels, depth_multiplier=0.125), 3)
    paths[name] = str(root / f"{name}.keras")
    model.save(paths[name])
    paths[name + "_model"] = model
  saved = str(root / "flow_saved_model")
  paths["flow_model"].export(saved, verbose=False)
  paths["flow_saved_model"] = saved
  return paths


def test_saved_model_teacher_computes_the_same_logits(flow_and_rgb):
  models, keys = teachers.load_teachers([flow_and_rgb["flow_saved_model"]], 3, "rgb")
  assert keys == ["flow"]
  clip = np.random.RandomState(0).uniform(-1, 1, (2, 8, 32, 32, 2)).astype("float32")
  np.testing.assert_allclose(models[0](clip), flow_and_rgb["flow_model"](clip, training=False),
                             rtol=1e-4, atol=1e-5)


def test_two_stream_teacher_reads_one_modality_each(flow_and_rgb):
  models, keys = teachers.load_teachers([flow_and_rgb["rgb"], flow_and_rgb["flow"]], 3, "rgb")
  assert keys == ["rgb", "flow"] and len(models) == 2


def test_model_dir_teacher_uses_its_student(flow_and_rgb, tmp_path):
  os.symlink(flow_and_rgb["flow"], tmp_path / "student.keras")
  models, keys = teachers.load_teachers([str(tmp_path)], 3, "rgb")
  assert keys == ["flow"] and teachers.num_classes(models[0]) == 3
