"""A flow model stores the flow it was trained on, and its consumers refuse other flow."""

import dataclasses
import types

import keras
import pytest

from d3d_tf.evaluation import evaluate_lib
from d3d_tf.models import ClipGeometry, S3DGBackbone, S3DGClassifier
from d3d_tf.models.flow_settings import RELEASE, FlowSettings, records_settings
from d3d_tf.probing import probe_lib
from d3d_tf.training import run_geometry
from tests.data import records_fixture as rf

TVL1 = FlowSettings("tvl1", 20.0, "png")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
  """Records of 'synthetic' flow: bound 20 in PNG planes, and bound 20 in JPEG planes."""
  root = tmp_path_factory.mktemp("flow_records")
  out = {}
  for name, flow_format in (("png", "png"), ("jpeg", "jpeg")):
    examples = [rf.make_video_example(f"v{k}", k % 3, num_frames=10, height=40, width=48,
                                      seed=k, flow_format=flow_format) for k in range(3)]
    out[name] = rf.write_records(str(root / f"{name}.tfrecord"), examples)
  return out


@pytest.fixture(scope="module")
def tvl1_model(tmp_path_factory):
  geometry = ClipGeometry(num_frames=8, crop_size=32, modality="flow",
                          labels=("class0", "class1", "class2")).with_flow_settings(TVL1)
  backbone = S3DGBackbone(input_channels=2, depth_multiplier=0.125, final_endpoint="Mixed_3c")
  path = str(tmp_path_factory.mktemp("tvl1") / "student.keras")
  S3DGClassifier(backbone, 3, clip_geometry=geometry).save(path)
  return path


def test_flow_settings_travel_with_the_keras_file(tvl1_model):
  geometry = keras.saving.load_model(tvl1_model, compile=False).clip_geometry
  assert geometry.flow_settings == TVL1
  assert geometry.to_dict()["flow_algorithm"] == "tvl1"
  assert "tvl1 flow, bound 20 px, png" in geometry.describe()
  # RGB geometries, and files written before the fields, look as they did.
  rgb = ClipGeometry(num_frames=8, crop_size=32)
  assert rgb.flow_settings is None and "flow_algorithm" not in rgb.to_dict()
  old = {"num_frames": 8, "crop_size": 32, "modality": "flow", "flow_bound": 20.0}
  assert ClipGeometry.from_dict(old).flow_settings == FlowSettings(None, 20.0, None)
  assert RELEASE == FlowSettings("tvl1", 20.0, None)


def test_records_settings_and_the_run_geometry_read_the_converter_fields(files):
  assert records_settings("eval_files", files["jpeg"]) == FlowSettings("synthetic", 20.0, "jpeg")
  with pytest.raises(ValueError, match="different methods or formats"):
    records_settings("train_files", f"{files['png']},{files['jpeg']}")
  config = types.SimpleNamespace(num_frames=8, stride=1, crop_size=32, train_files=files["png"])
  geometry = run_geometry.run_geometry(config, ["a", "b", "c"], "flow")
  assert geometry.flow_settings == FlowSettings("synthetic", 20.0, "png")
  assert run_geometry.run_geometry(config, ["a", "b", "c"], "rgb").flow_settings is None


def test_evaluate_refuses_records_of_another_flow_naming_both(tvl1_model, files, tmp_path):
  with pytest.raises(ValueError) as error:
    evaluate_lib.evaluate(evaluate_lib.EvalConfig(
        models=(tvl1_model,), eval_files=files["png"], output_dir=str(tmp_path / "out")),
        show_progress=False)
  message = str(error.value)
  assert message.startswith(f"{tvl1_model} was trained on tvl1 flow, bound 20 px, png, but "
                            "--eval_files hold synthetic flow, bound 20 px, png (algorithm "
                            "differ): convert them with --flow=tvl1 ("), message
  assert "\n" not in message
  # A flow model that records no flow is accepted, with a note.
  notes = evaluate_lib._check_flow(
      [dataclasses.make_dataclass("M", ["path", "model", "modality"])(
          "old.keras", S3DGClassifier(S3DGBackbone(input_channels=2, depth_multiplier=0.125,
                                                   final_endpoint="Mixed_3b"), 3), "flow")],
      files["png"])
  assert len(notes) == 1 and notes[0].startswith("old.keras does not record the flow it was "
                                                 "trained on")


def test_probe_refuses_records_of_another_flow(tvl1_model, files, tmp_path):
  config = probe_lib.ProbeConfig(train_files=files["png"], eval_files=files["png"],
                                 output_dir=str(tmp_path / "probe"), models=(tvl1_model,))
  with pytest.raises(ValueError, match=r"trained on tvl1 flow, bound 20 px, png, but "
                                       r"--train_files hold synthetic flow"):
    probe_lib.run_probe(config)
