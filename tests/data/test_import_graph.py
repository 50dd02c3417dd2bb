"""The record pipelines stand without PyAV and OpenCV; video decoding sits beside them."""

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _modules_after(code: str) -> set:
  """Names in `sys.modules` after running `code` in a fresh interpreter."""
  script = code + "; import sys; print(' '.join(sorted(sys.modules)))"
  env = dict(os.environ, PYTHONPATH=os.pathsep.join(
      [ROOT] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
  out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                       check=True, cwd=ROOT, env=env)
  return set(out.stdout.split())


def test_record_pipelines_import_neither_pyav_nor_opencv():
  # Keras may import OpenCV for its own image utilities; only what d3d_tf adds counts.
  baseline = _modules_after("import tensorflow as tf; tf.data.Dataset; import keras")
  modules = _modules_after(
      "from d3d_tf.data import datasets, records, shards, builders, record_source")
  added = modules - baseline
  assert "av" not in modules
  assert "cv2" not in added
  assert not any(m.startswith("d3d_tf.video") for m in modules)


def test_the_video_package_does_not_import_the_data_package():
  modules = _modules_after("from d3d_tf.video import raw_video, video_io, optical_flow")
  assert "av" in modules and "cv2" in modules
  assert not any(m.startswith("d3d_tf.data") for m in modules)
