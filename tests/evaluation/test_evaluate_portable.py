"""`d3d_tf.evaluate` on ONNX and LiteRT exports: the shipped file scores as its .keras does."""

import csv
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from d3d_tf.evaluation import eval_config
from d3d_tf.evaluation import evaluate_lib
from d3d_tf.serving import litert_export
from d3d_tf.serving import onnx_export
from tests.data import records_fixture as rf
from tests.serving.portable_models import LABELS, tiny_model

MOTIONS = ((2, 0), (0, 2), (-2, -2))
NUM_VIDEOS = 9


def _frames(k):
  """Video k: a translating texture tinted by its class, so the tiny model's top-1 varies."""
  dx, dy = MOTIONS[k % 3]
  tint = np.eye(3)[k % 3] * 110.0
  texture = rf.textured_frames(10, 40, 48, dx, dy, seed=k).astype(np.float32)
  return np.clip(texture * 0.5 + tint, 0, 255).astype(np.uint8)


def _predictions(out_dir):
  with open(os.path.join(out_dir, "predictions.csv")) as f:
    return [int(row["prediction_index"]) for row in csv.DictReader(f)]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
  root = tmp_path_factory.mktemp("portable_eval")
  examples = [rf.make_video_example(f"vid{k}", k % 3, frames=_frames(k), with_flow=False)
              for k in range(NUM_VIDEOS)]
  files = rf.write_records(str(root / "test.tfrecord"), examples)
  model = tiny_model(3, seed=4)
  keras_path = str(root / "student.keras")
  model.save(keras_path)
  onnx_path = onnx_export.export(model, LABELS, str(root / "student.onnx"))
  tflite_path = litert_export.export(model, LABELS, str(root / "student.tflite"))
  out_dir = str(root / "keras")
  result = evaluate_lib.evaluate(
      eval_config.EvalConfig(models=(keras_path,), eval_files=files, output_dir=out_dir,
                             num_clips=2), show_progress=False)
  return dict(root=root, files=files, onnx=onnx_path, tflite=tflite_path,
              top1=result["rows"][0]["top1"], predictions=_predictions(out_dir))


def test_setup_predictions_vary(setup):
  # A model predicting one class everywhere would agree with anything.
  assert len(setup["predictions"]) == NUM_VIDEOS and len(set(setup["predictions"])) >= 2


def test_evaluate_cli_on_onnx_matches_keras(setup):
  out_dir = str(setup["root"] / "onnx")
  proc = subprocess.run(
      [sys.executable, "-m", "d3d_tf.evaluate", f"--models={setup['onnx']}",
       f"--eval_files={setup['files']}", f"--output_dir={out_dir}", "--num_clips=2"],
      capture_output=True, text=True, timeout=300,
      env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
  assert proc.returncode == 0, proc.stderr[-2000:]
  assert "student.onnx" in proc.stdout
  with open(os.path.join(out_dir, "report.json")) as f:
    report = json.load(f)
  assert report["summary"]["num_videos"] == NUM_VIDEOS
  assert report["rows"][0]["top1"] == pytest.approx(setup["top1"])
  assert _predictions(out_dir) == setup["predictions"]


def test_evaluate_on_litert_matches_keras(setup):
  out_dir = str(setup["root"] / "litert")
  result = evaluate_lib.evaluate(
      eval_config.EvalConfig(models=(setup["tflite"],), eval_files=setup["files"],
                             output_dir=out_dir, num_clips=2), show_progress=False)
  assert result["rows"][0]["top1"] == pytest.approx(setup["top1"])
  assert _predictions(out_dir) == setup["predictions"]
