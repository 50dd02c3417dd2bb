"""Writes a trained classifier as a SavedModel in TF Serving's `<base>/<name>/<version>/` layout.

The export is self-contained: preprocessing, weights, class names (in the graph) and warm-up
requests. The clip geometry comes from the model (`ClipGeometry`, flags override it) and is
kept in the graph (`clip_geometry`, JSON) and as `assets/clip_geometry.json`;
`assets.extra/d3d_export.json` records how the export was made, for humans and `predict`.

The graph holds one formulation of S3D-G's 3D convs and max pools (`models/frame_ops_policy`),
fixed when it is traced: `serving_device="gpu"` (default) traces TF's Conv3D / MaxPool3D, which
run correctly on any device and fast on GPUs (cuDNN); `"cpu"` traces this process's CPU choice
(measured on the exporting machine, or forced by D3D_TF_FRAME_OPS), Conv2D over frames where
that was faster here.
"""

import dataclasses
import json
import os
import shutil
import tempfile
from typing import Optional, Sequence

import keras
import tensorflow as tf

from d3d_tf.models import frame_ops_policy
from d3d_tf.models import model_files
from d3d_tf.models import clip_geometry as geometry_lib
from d3d_tf.serving import module as module_lib
from d3d_tf.serving.export_config import ExportConfig
from d3d_tf.serving import warmup

METADATA_FILE = "d3d_export.json"
SERVING_DEVICES = frame_ops_policy.DEVICES
GEOMETRY_ASSET = "clip_geometry.json"


def load_keras_model(path: str) -> keras.Model:
  """The `.keras` classifier to export (a model dir's student.keras too)."""
  return model_files.load_keras(path, "model")


def export_dir(export_base: str, name: str, version: int) -> str:
  return os.path.join(export_base, name, str(int(version)))


def export(model: keras.Model, labels: Sequence[str], export_base: str, name: str,
           version: int, *, crop_size: Optional[int] = None,
           crop_fraction: Optional[float] = None, num_frames: Optional[int] = None,
           top_k: int = 5, quantize: str = "none", overwrite: bool = False,
           warmup_size: Optional[Sequence[int]] = None, source: str = "the model",
           notes: Optional[list] = None, serving_device: str = "gpu") -> str:
  """Exports `model` with its labels; returns the version directory.

  Args:
    model: RGB classifier (3 input channels) returning logits.
    labels: Class names in index order.
    export_base: Root of the model repository (TF Serving's `--model_base_path` parent).
    name: Model name (the directory under `export_base`, and the served model name).
    version: Positive integer version directory.
    crop_size: Model input side the graph resizes to; None: the model's `clip_geometry`.
    crop_fraction: Centre crop side / short side; None: the model's.
    num_frames: Frames per clip (metadata and warm-up shape); None: the model's.
    top_k: Top classes returned.
    quantize: "none" or "float16" (weights stored in half precision).
    overwrite: Replace an existing version directory instead of failing.
    warmup_size: (height, width) of the warm-up frames; default (128, 171).
    source: The model's name in messages.
    notes: If a list, the overrides of the model's geometry are appended to it.
    serving_device: "gpu": TF's 3D convs and pools in the graph (serve anywhere, fast on GPU);
      "cpu": this machine's CPU formulation (see the module docstring).

  Raises:
    FileExistsError: the version directory exists and `overwrite` is False.
    ValueError: the model stores no geometry and `crop_size` or `num_frames` is missing, or
      `serving_device` is not "gpu" or "cpu".
  """
  if serving_device not in SERVING_DEVICES:
    raise ValueError(f"serving_device must be one of {', '.join(SERVING_DEVICES)}. "
                     f"Received: {serving_device!r}")
  if int(version) < 1:
    raise ValueError(f"version must be a positive integer. Received: version={version}")
  module_lib.check_exportable(model, labels)
  out = export_dir(export_base, name, version)
  if tf.io.gfile.exists(out) and not overwrite:
    raise FileExistsError(f"{out} already exists; pick a new --version or pass --overwrite.")
  stored = geometry_lib.geometry_of(model)
  values, overrides = geometry_lib.resolve(
      stored, {"num_frames": num_frames, "crop_size": crop_size, "crop_fraction": crop_fraction},
      source)
  if notes is not None:
    notes.extend(overrides)
  served = dataclasses.replace(stored, **values, labels=tuple(labels)) if stored else \
      geometry_lib.ClipGeometry(**values, labels=tuple(labels))
  module = module_lib.ClassifierModule(model, labels, crop_size=served.crop_size,
                                       crop_fraction=served.crop_fraction, top_k=top_k,
                                       quantize=quantize, geometry_json=served.to_json(),
                                       fixed_frames=served.num_frames if served.fixed_size else 0)
  tmp = out + ".tmp"
  if tf.io.gfile.exists(tmp):
    shutil.rmtree(tmp)
  with tempfile.TemporaryDirectory() as scratch, \
      frame_ops_policy.use_policy(serving_policy(serving_device)):
    asset = os.path.join(scratch, GEOMETRY_ASSET)
    with open(asset, "w", encoding="utf-8") as f:
      f.write(served.to_json())
    module.clip_geometry_file = tf.saved_model.Asset(asset)  # Copied into assets/.
    signatures = module.signatures()
    tf.saved_model.save(module, tmp, signatures=signatures)
  height, width = warmup_size or (128, 171)
  warmup.write_warmup_requests(tmp, name, warmup.warmup_frames(served.num_frames, height, width))
  metadata = dict(labels=list(labels), crop_size=served.crop_size,
                  crop_fraction=served.crop_fraction, num_frames=served.num_frames,
                  clip_geometry=served.to_dict(), geometry_overrides=overrides,
                  top_k=module.top_k, quantize=quantize, serving_device=serving_device,
                  tensorflow_version=tf.__version__, keras_version=keras.__version__,
                  signatures=sorted(signatures))
  with open(os.path.join(tmp, warmup.WARMUP_DIR, METADATA_FILE), "w", encoding="utf-8") as f:
    json.dump(metadata, f, indent=2)
  if tf.io.gfile.exists(out):  # --overwrite: the old version goes once the new one is whole.
    shutil.rmtree(out)
  os.replace(tmp, out)  # TF Serving only sees complete versions.
  return out


def serving_policy(serving_device: str) -> frame_ops_policy.FormulationPolicy:
  """The formulation policy an export for `serving_device` is traced under."""
  if serving_device == "gpu":
    return frame_ops_policy.FormulationPolicy(mode="3d", device="gpu")
  return frame_ops_policy.policy_from_env(device="cpu")


def read_geometry(version_dir: str) -> Optional[geometry_lib.ClipGeometry]:
  """The `ClipGeometry` an export serves (its assets/clip_geometry.json), or None for older ones."""
  path = os.path.join(version_dir, "assets", GEOMETRY_ASSET)
  if not os.path.isfile(path):
    return None
  with open(path, encoding="utf-8") as f:
    return geometry_lib.ClipGeometry.from_dict(json.load(f))


def export_from_files(config: ExportConfig, notes: Optional[list] = None) -> str:
  """`export` of the `.keras` file `config.model`; labels: `config.label_map`, else the
  model's, else the file beside it. `notes`: as in `export`."""
  config.validate()
  model = load_keras_model(config.model)
  labels, _ = model_files.resolve_labels(config.label_map, geometry_lib.geometry_of(model),
                                         config.model)
  return export(model, labels, config.export_base, config.name, config.version,
                crop_size=config.crop_size, crop_fraction=config.crop_fraction,
                num_frames=config.num_frames, top_k=config.top_k, quantize=config.quantize,
                overwrite=config.overwrite, warmup_size=config.warmup_size,
                source=config.model, notes=notes, serving_device=config.serving_device)


def export_portable(config: ExportConfig, notes: Optional[list] = None) -> str:
  """`config.model` as one ONNX or LiteRT file (`config.format`), for runtimes without
  TensorFlow; each runtime's converter is imported only here (the `onnx`, `litert` extras)."""
  config.validate()
  common = dict(num_frames=config.num_frames, crop_size=config.crop_size,
                overwrite=config.overwrite, notes=notes)
  if config.format == "onnx":
    from d3d_tf.serving import onnx_export  # pylint: disable=g-import-not-at-top
    return onnx_export.export_from_files(config.model, config.label_map, config.output,
                                         **common)
  from d3d_tf.serving import litert_export  # pylint: disable=g-import-not-at-top
  return litert_export.export_from_files(
      config.model, config.label_map, config.output, quantize=config.quantize,
      representative_files=config.representative_files, **common)
