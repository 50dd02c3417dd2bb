"""Teachers load from a .keras file, a model dir or a SavedModel, and are checked up front."""

import os

import numpy as np
import pytest

from d3d_tf.models import ClipGeometry, S3DGBackbone, S3DGClassifier
from d3d_tf.models.flow_settings import FlowSettings
from d3d_tf.training import teachers


@pytest.fixture(scope="module")
def flow_and_rgb(tmp_path_factory):
  root = tmp_path_factory.mktemp("teachers")
  paths = {}
  for name, channels in (("flow", 2), ("rgb", 3)):
    model = S3DGClassifier(S3DGBackbone(input_channels=channels, depth_multiplier=0.125,
                                        final_endpoint="Mixed_3c"), 3)
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


TVL1 = {"--train_files": FlowSettings("tvl1", 20.0, "png")}


def test_teacher_geometry_is_checked_against_the_run(flow_and_rgb):
  model = flow_and_rgb["flow_model"]
  clip = {"num_frames": 8, "stride": 1, "crop_size": 32}
  labels = ["a", "b", "c"]
  model.clip_geometry = ClipGeometry(num_frames=8, crop_size=32, modality="flow",
                                     flow_bound=20.0, flow_algorithm="tvl1", flow_format="png",
                                     labels=labels)
  try:
    assert teachers.check_geometry(["t"], [model], clip, labels, TVL1) == []
    notes = teachers.check_geometry(["t"], [model], dict(clip, crop_size=64), labels, TVL1)
    assert len(notes) == 1 and "--crop_size=64 (this run) differs from crop_size=32" in notes[0]
    with pytest.raises(ValueError, match="other classes: its class 1 is 'b'.*'B'"):
      teachers.check_geometry(["t"], [model], clip, ["a", "B", "c"], TVL1)
    with pytest.raises(ValueError, match="--stride=2 contradicts teacher t"):
      teachers.check_geometry(["t"], [model], dict(clip, stride=2), labels, TVL1)
  finally:
    model.clip_geometry = None


@pytest.mark.parametrize("records, message", [
    (FlowSettings("dis", 20.0, "png"),
     r"^Teacher 't' was trained on tvl1 flow, bound 20 px, png, but --train_files hold dis "
     r"flow, bound 20 px, png \(algorithm differ\): convert them with --flow=tvl1 \("),
    (FlowSettings("tvl1", 8.0, "png"),
     r"tvl1 flow, bound 8 px, png \(bound differ\): convert them with --flow_bound=20 \("),
    (FlowSettings("tvl1", 20.0, "jpeg"),
     r"bound 20 px, jpeg \(quantization differ\): convert them with --flow_format=png \("),
])
def test_flow_teacher_refuses_records_of_other_flow_naming_both(flow_and_rgb, records, message):
  model = flow_and_rgb["flow_model"]
  clip = {"num_frames": 8, "stride": 1, "crop_size": 32}
  model.clip_geometry = ClipGeometry(num_frames=8, crop_size=32, modality="flow",
                                     flow_bound=20.0, flow_algorithm="tvl1", flow_format="png")
  try:
    with pytest.raises(ValueError, match=message) as error:
      teachers.check_geometry(["t"], [model], clip, ["a", "b", "c"],
                              {"--train_files": records})
    assert "\n" not in str(error.value)
  finally:
    model.clip_geometry = None


def test_flow_teacher_without_stored_flow_is_accepted_with_a_note(flow_and_rgb):
  clip = {"num_frames": 8, "stride": 1, "crop_size": 32}
  # A SavedModel carries no geometry; a .keras file saved before the flow settings was stored
  # knows its bound only.
  notes = teachers.check_geometry(["s"], [flow_and_rgb["flow_model"]], clip, ["x"] * 3, TVL1)
  assert notes == ["Teacher 's' does not record the flow it was trained on (a model saved "
                   "before d3d_tf stored it): accepted; it must have been tvl1 flow, bound 20 "
                   "px, png, as --train_files hold."]
  model = flow_and_rgb["flow_model"]
  model.clip_geometry = ClipGeometry(num_frames=8, crop_size=32, modality="flow",
                                     flow_bound=20.0)
  try:
    notes = teachers.check_geometry(["t"], [model], clip, ["x"] * 3, TVL1)
    assert len(notes) == 1 and "records its flow bound but not its flow method" in notes[0]
    with pytest.raises(ValueError, match="bound 20 px, but --train_files hold tvl1 flow, "
                                         "bound 8 px"):
      teachers.check_geometry(["t"], [model], clip, ["x"] * 3,
                              {"--train_files": FlowSettings("tvl1", 8.0, "png")})
  finally:
    model.clip_geometry = None
  # An RGB teacher reads no flow: nothing to check.
  assert teachers.check_geometry(["r"], [flow_and_rgb["rgb_model"]], clip, ["x"] * 3, TVL1) == []


def test_same_modality_teacher_is_refused_unless_asked(flow_and_rgb):
  with pytest.raises(ValueError, match="must read flow.*--same_modality_teacher"):
    teachers.load_teachers([flow_and_rgb["rgb"]], 3, "rgb")
  models, keys = teachers.load_teachers([flow_and_rgb["rgb"]], 3, "rgb", same_modality_ok=True)
  assert keys == ["rgb"] and len(models) == 1
