"""train_lib: a flow run, then a D3D run with it as teacher; bad inputs fail with one message."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.python.framework import config as tf_config

from d3d_tf.training import train_config, train_lib
from d3d_tf.models import ClipGeometry, ENDPOINTS, S3DGBackbone, S3DGClassifier
from tests.training import tiny_data

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
  return tiny_data.write_tiny_records(str(tmp_path_factory.mktemp("tiny")))


@pytest.fixture(scope="module")
def flow_dir(data_dir, tmp_path_factory):
  model_dir = str(tmp_path_factory.mktemp("flow"))
  train_lib.train(train_lib.TrainConfig(**tiny_data.tiny_flags(data_dir, model_dir, "flow"),
                                        verbose=0))
  return model_dir


def _config(data_dir, model_dir, stream="rgb", **kw):
  return train_lib.TrainConfig(**tiny_data.tiny_flags(data_dir, str(model_dir), stream, **kw),
                               verbose=0)


@pytest.mark.slow
def test_flow_then_d3d(data_dir, flow_dir, tmp_path):
  for name in ("flags.txt", "label_map.txt", "environment.json", "final_metrics.json",
               "student.keras", "best/student.keras", "best/metrics.json"):
    assert os.path.isfile(os.path.join(flow_dir, name)), name
  with open(os.path.join(flow_dir, "environment.json")) as f:
    env = json.load(f)
  assert {"tensorflow", "keras", "devices", "strategy", "replicas"} <= set(env)
  teacher_file = os.path.join(flow_dir, "student.keras")
  before = [w.copy() for w in keras.saving.load_model(teacher_file).get_weights()]

  metrics = train_lib.train(_config(data_dir, tmp_path, "d3d", teacher=flow_dir))
  assert {"step", "val_top1", "val_top5", "train_seconds"} <= set(metrics)
  assert metrics["step"] == 2 and np.isfinite(metrics["loss"])
  assert metrics["distill_loss"] > 0
  with open(tmp_path / "final_metrics.json") as f:
    assert json.load(f)["step"] == 2
  with open(tmp_path / "best" / "metrics.json") as f:
    assert {"step", "val_top1", "val_top5"} <= set(json.load(f))
  assert os.listdir(tmp_path / "logs" / "validation")
  after = keras.saving.load_model(teacher_file).get_weights()
  for a, b in zip(before, after):
    np.testing.assert_array_equal(a, b)
  student = keras.saving.load_model(str(tmp_path / "student.keras"))
  assert isinstance(student, S3DGClassifier) and student.inputs[0].shape[-1] == 3
  # Each model stores the clips it was trained on, its classes and (flow) its records' bound.
  labels = ("class0", "class1", "class2")
  assert student.clip_geometry == ClipGeometry(num_frames=8, crop_size=32, labels=labels)
  teacher = keras.saving.load_model(teacher_file).clip_geometry
  assert (teacher.modality, teacher.flow_bound, teacher.labels) == ("flow", 20.0, labels)
  best = keras.saving.load_model(str(tmp_path / "best" / "student.keras"))
  assert best.clip_geometry == student.clip_geometry
  flags_text = (tmp_path / "flags.txt").read_text()
  assert "--stream=d3d" in flags_text and f"--teacher={flow_dir}" in flags_text


def _save_model(path, channels, classes):
  model = S3DGClassifier(S3DGBackbone(input_channels=channels, depth_multiplier=0.125), classes)
  model.save(path)
  return path


@pytest.mark.parametrize("teacher_args, error, match", [
    ((2, 5), ValueError, "predicts 5 classes but the label map has 3"),
    ((3, 3), ValueError, "expects 3 channels \\(rgb\\) but the D3D teacher must read flow"),
    (None, FileNotFoundError, "does not exist"),
])
def test_bad_teacher(data_dir, tmp_path, teacher_args, error, match):
  path = str(tmp_path / "teacher.keras")
  if teacher_args:
    _save_model(path, *teacher_args)
  with pytest.raises(error, match=match):
    train_lib.train(_config(data_dir, tmp_path / "run", "d3d", teacher=path))


def test_same_modality_teacher_only_on_request(cut_run, data_dir, tmp_path):
  """An RGB teacher for the RGB student (the teacher control of "When does D3D help?"): plain distillation."""
  teacher = str(cut_run[0] / "student.keras")
  metrics = train_lib.train(_config(data_dir, tmp_path / "run", "d3d", teacher=teacher,
                                    same_modality_teacher=True, train_steps=1, eval_files="",
                                    final_endpoint="Mixed_3c"))
  assert metrics["step"] == 1 and np.isfinite(metrics["distill_loss"])
  assert "--same_modality_teacher" in (tmp_path / "run" / "flags.txt").read_text()


def test_uint8_clips_train_a_student(cut_run, data_dir, tmp_path):
  """`--uint8_clips`: uint8 RGB and flow from the pipeline, normalised in the train step."""
  teacher = str(cut_run[0] / "student.keras")
  metrics = train_lib.train(_config(data_dir, tmp_path / "run", "d3d", teacher=teacher,
                                    same_modality_teacher=True, uint8_clips=True,
                                    train_steps=1, eval_files="", final_endpoint="Mixed_3c"))
  assert metrics["step"] == 1
  assert np.isfinite(metrics["loss"]) and np.isfinite(metrics["distill_loss"])
  assert "--uint8_clips" in (tmp_path / "run" / "flags.txt").read_text()


@pytest.fixture(scope="module")
def cut_run(data_dir, tmp_path_factory):
  """A finished one-step run of an S3D-G cut after Mixed_3c, trained from Python."""
  tf.random.set_seed(None)  # Whatever an earlier test set: train() must not set one.
  model_dir = tmp_path_factory.mktemp("cut")
  metrics = train_lib.train(_config(data_dir, model_dir, train_steps=1, eval_files="",
                                    final_endpoint="Mixed_3c"))
  return model_dir, metrics


def test_final_endpoint_cuts_the_backbone(cut_run):
  model_dir, metrics = cut_run
  assert metrics["step"] == 1
  student = keras.saving.load_model(str(model_dir / "student.keras"))
  assert student.backbone.final_endpoint == "Mixed_3c"
  assert "Mixed_4b" not in student.backbone.output
  assert "--final_endpoint=Mixed_3c" in (model_dir / "flags.txt").read_text()


def test_train_from_python_leaves_global_state_alone(cut_run, data_dir, tmp_path):
  assert cut_run[1]["step"] == 1
  assert tf.compat.v1.get_seed(None)[0] is None  # --seed=1 seeded the data, not the process.
  if not tf_config.is_op_determinism_enabled():
    with pytest.raises(ValueError, match="enable_op_determinism"):
      train_lib.train(_config(data_dir, tmp_path, deterministic=True))
    assert not os.path.exists(tmp_path / "flags.txt")


def _snapshot(model_dir):
  return {name: ((model_dir / name).read_bytes(), (model_dir / name).stat().st_mtime_ns)
          for name in ("flags.txt", "final_metrics.json", "student.keras", "environment.json")}


def test_finished_run_is_kept_and_its_flags_txt_reruns(cut_run, data_dir, capsys):
  model_dir, metrics = cut_run
  before = _snapshot(model_dir)
  config = _config(data_dir, model_dir, train_steps=1, eval_files="", final_endpoint="Mixed_3c")
  assert train_lib.train(config) == json.loads(before["final_metrics.json"][0]) == metrics
  assert np.isfinite(metrics["loss"])  # The training metrics, not a rewrite without them.
  assert f"Run already finished at step 1 of 1: {model_dir} kept" in capsys.readouterr().out
  # The flags.txt that train() wrote reruns with the CLI, which finds the run finished too.
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=REPO)
  result = subprocess.run(
      [sys.executable, "-m", "d3d_tf.train", f"--flagfile={model_dir / 'flags.txt'}"],
      cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-2000:]
  assert "Run already finished at step 1 of 1" in result.stdout
  assert _snapshot(model_dir) == before


def test_endpoints_copy_matches_the_backbone():
  assert train_config.ENDPOINTS == ENDPOINTS


def test_bad_final_endpoint(data_dir, tmp_path):
  with pytest.raises(ValueError,
                     match="--final_endpoint must be one of .*Mixed_3c.*; got 'Mixed_9z'"):
    train_lib.train(_config(data_dir, tmp_path, final_endpoint="Mixed_9z"))


def test_d3d_without_teacher(data_dir, tmp_path):
  with pytest.raises(ValueError, match="--stream=d3d needs --teacher"):
    train_lib.train(_config(data_dir, tmp_path, "d3d"))


def test_no_train_files(data_dir, tmp_path):
  with pytest.raises(FileNotFoundError, match="No files match --train_files"):
    train_lib.train(_config(data_dir, tmp_path, train_files=str(tmp_path / "none-*.tfrecord")))


def test_empty_dataset(data_dir, tmp_path):
  (tmp_path / "empty-00000.tfrecord").write_bytes(b"")
  with pytest.raises(ValueError, match="hold no records"):
    train_lib.train(_config(data_dir, tmp_path / "run",
                            train_files=str(tmp_path / "empty-*.tfrecord")))


def test_bad_steps(data_dir, tmp_path):
  with pytest.raises(ValueError, match="multiple of --checkpoint_every"):
    train_lib.train(_config(data_dir, tmp_path, train_steps=3, checkpoint_every=2))


def test_step_schedule_roundtrip():
  from d3d_tf.training.optimizers import WarmupStepDecay
  schedule = WarmupStepDecay(0.1, [60, 70], 0.1, warmup_steps=10)
  values = [float(schedule(s)) for s in (0, 9, 59, 60, 70)]
  np.testing.assert_allclose(values, [0.01, 0.1, 0.1, 0.01, 0.001], rtol=1e-5)
  clone = WarmupStepDecay.from_config(schedule.get_config())
  assert float(clone(65)) == pytest.approx(0.01)
