"""Writes a trained classifier as a SavedModel in TF Serving's `<base>/<name>/<version>/` layout.

The export is self-contained: preprocessing, weights, class names (in the graph) and warm-up
requests; `assets.extra/d3d_export.json` records how it was made, for humans and `predict`.
"""

import json
import os
import shutil
from typing import Optional, Sequence

import keras
import tensorflow as tf

from d3d_tf.data import label_map as label_map_lib
from d3d_tf.serving import module as module_lib
from d3d_tf.serving import warmup

METADATA_FILE = "d3d_export.json"


def load_keras_model(path: str) -> keras.Model:
  """Loads a `.keras` classifier (importing `d3d_tf.models` registers its layers)."""
  import d3d_tf.models  # noqa: F401  # pylint: disable=g-import-not-at-top,unused-import
  if not os.path.isfile(path):
    raise FileNotFoundError(f"Model file {path!r} does not exist.")
  return keras.saving.load_model(path, compile=False)


def export_dir(export_base: str, name: str, version: int) -> str:
  return os.path.join(export_base, name, str(int(version)))


def export(model: keras.Model, labels: Sequence[str], export_base: str, name: str,
           version: int, *, crop_size: int = 112, crop_fraction: float = 0.875,
           num_frames: int = 16, top_k: int = 5, quantize: str = "none",
           overwrite: bool = False, warmup_size: Optional[Sequence[int]] = None) -> str:
  """Exports `model` with its labels; returns the version directory.

  Args:
    model: RGB classifier (3 input channels) returning logits.
    labels: Class names in index order.
    export_base: Root of the model repository (TF Serving's `--model_base_path` parent).
    name: Model name (the directory under `export_base`, and the served model name).
    version: Positive integer version directory.
    crop_size: Model input side the graph resizes to.
    crop_fraction: Centre crop side / short side.
    num_frames: Frames per clip the model was trained on (metadata and warm-up shape).
    top_k: Top classes returned.
    quantize: "none" or "float16" (weights stored in half precision).
    overwrite: Replace an existing version directory instead of failing.
    warmup_size: (height, width) of the warm-up frames; default (128, 171).

  Raises:
    FileExistsError: the version directory exists and `overwrite` is False.
  """
  if int(version) < 1:
    raise ValueError(f"version must be a positive integer. Received: version={version}")
  out = export_dir(export_base, name, version)
  if tf.io.gfile.exists(out):
    if not overwrite:
      raise FileExistsError(f"{out} already exists; pick a new --version or pass --overwrite.")
    shutil.rmtree(out)
  module = module_lib.ClassifierModule(model, labels, crop_size=crop_size,
                                       crop_fraction=crop_fraction, top_k=top_k,
                                       quantize=quantize)
  tmp = out + ".tmp"
  if tf.io.gfile.exists(tmp):
    shutil.rmtree(tmp)
  tf.saved_model.save(module, tmp, signatures=module.signatures())
  height, width = warmup_size or (128, 171)
  warmup.write_warmup_requests(tmp, name, warmup.warmup_frames(num_frames, height, width))
  metadata = dict(labels=list(labels), crop_size=crop_size, crop_fraction=crop_fraction,
                  num_frames=num_frames, top_k=module.top_k, quantize=quantize,
                  tensorflow_version=tf.__version__, keras_version=keras.__version__,
                  signatures=[module_lib.SERVING_DEFAULT, module_lib.PREDICT_JPEG])
  with open(os.path.join(tmp, warmup.WARMUP_DIR, METADATA_FILE), "w", encoding="utf-8") as f:
    json.dump(metadata, f, indent=2)
  os.replace(tmp, out)  # TF Serving only sees complete versions.
  return out


def export_from_files(model_path: str, label_map_path: Optional[str], export_base: str,
                      name: str, version: int, **kw) -> str:
  """`export` from a `.keras` file; the label map defaults to `label_map.txt` beside it."""
  if not label_map_path:
    label_map_path = os.path.join(os.path.dirname(os.path.abspath(model_path)), "label_map.txt")
  labels = label_map_lib.read_label_map(label_map_path)
  return export(load_keras_model(model_path), labels, export_base, name, version, **kw)
