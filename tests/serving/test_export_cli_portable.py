"""`python -m d3d_tf.export --format=onnx|litert`: files that reproduce the .keras, or one line."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from d3d_tf.data import processors
from d3d_tf.inference import runtimes
from tests.serving.portable_models import CROP, FRAMES, LABELS, tiny_model


def _export(*flags):
  return subprocess.run([sys.executable, "-m", "d3d_tf.export", *flags], capture_output=True,
                        text=True, timeout=300, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))


@pytest.fixture(scope="module")
def keras_file(tmp_path_factory):
  root = tmp_path_factory.mktemp("export_cli")
  model = tiny_model(3, seed=1)
  path = str(root / "student.keras")
  model.save(path)
  clips = np.random.default_rng(3).integers(0, 256, (2, FRAMES, CROP, CROP, 3), dtype=np.uint8)
  expected = model(processors.normalize_rgb(clips), training=False).numpy()
  return dict(path=path, clips=clips, expected=expected)


@pytest.mark.parametrize("fmt, suffix", [("onnx", ".onnx"), ("litert", ".tflite")])
def test_cli_writes_a_file_that_reproduces_the_keras_model(keras_file, tmp_path, fmt, suffix):
  output = str(tmp_path / f"d3d{suffix}")
  proc = _export(f"--model={keras_file['path']}", f"--format={fmt}", f"--output={output}")
  assert proc.returncode == 0, proc.stderr[-2000:]
  assert f"Exported {fmt} to {output}" in proc.stdout
  written = sorted(os.listdir(tmp_path))
  assert written == (["d3d.onnx"] if fmt == "onnx" else ["d3d.tflite", "d3d.tflite.json"])
  loaded = runtimes.load(output)
  assert loaded.labels == LABELS and loaded.clip_shape == (FRAMES, CROP, CROP, 3)
  np.testing.assert_allclose(loaded.logits(keras_file["clips"]), keras_file["expected"],
                             atol=1e-4, rtol=0)
  assert np.abs(keras_file["expected"][0] - keras_file["expected"][1]).max() > 0.05
  if fmt == "litert":
    with open(output + ".json") as f:
      assert json.load(f)["d3d_export"]["quantize"] == "none"


@pytest.mark.parametrize("flags, message", [
    (["--format=onnx"], "--format=onnx needs --output=FILE.onnx; got None."),
    (["--format=litert", "--output={dir}/d3d.onnx"],
     "--format=litert needs --output=FILE.tflite; got '{dir}/d3d.onnx'."),
    (["--format=onnx", "--output={dir}/d3d.tflite"],
     "--format=onnx needs --output=FILE.onnx; got '{dir}/d3d.tflite'."),
    (["--format=litert", "--output={dir}/d3d.tflite", "--quantize=int8"],
     "--quantize=int8 calibrates on clips: pass --representative_files"),
    (["--format=onnx", "--output={dir}/d3d.onnx", "--quantize=dynamic_int8"],
     "--quantize does not apply to --format=onnx"),
    (["--format=litert", "--output={dir}/d3d.tflite", "--crop_fraction=0.9"],
     "--crop_fraction applies to --format=saved_model"),
])
def test_bad_flags_are_one_line_exit_2_and_write_nothing(keras_file, tmp_path, flags, message):
  proc = _export(f"--model={keras_file['path']}",
                 *(f.format(dir=tmp_path) for f in flags))
  assert proc.returncode == 2
  lines = proc.stderr.strip().splitlines()
  assert len(lines) == 1 and lines[0].startswith("export: error: "), proc.stderr[-2000:]
  assert message.format(dir=tmp_path) in lines[0]
  assert os.listdir(tmp_path) == []
