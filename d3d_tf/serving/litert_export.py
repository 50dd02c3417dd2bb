"""Writes a classifier as a LiteRT (`.tflite`) flatbuffer, with a JSON sidecar of its metadata.

TF's `TFLiteConverter` converts the exported function (`portable.clip_function`) with LiteRT
builtins only: S3D-G's 3D convs and max pools are traced as 2D ops over frames
(`models/frame_ops.py`) and the head's 3D average pool, which has no builtin, is the portable 2D form. TF Select (Flex)
ops are not allowed: they would drag the TF runtime onto the device, the thing LiteRT avoids.
An op without a builtin is therefore an error naming it.

The file is always traced with the 2D form (`portable.formulation`), on any machine.

Labels, the clip geometry and how the file was made are written beside the model as
`FILE.tflite.json` (`portable.metadata`'s keys, values parsed): LiteRT's metadata schema needs
an extra library to write, and a JSON file reads anywhere.

Quantisation (`QUANTIZE_CHOICES`): `float16` stores weights in half precision (compute float32
on CPU); `dynamic_int8` stores int8 weights and quantises activations on the fly; `int8` is full
integer quantisation calibrated on a representative dataset (clips like those it will see).
"""

import json
import re
from typing import Callable, Iterable, List, Optional, Sequence

import keras
import numpy as np
import tensorflow as tf

from d3d_tf.models import frame_ops_policy
from d3d_tf.serving import portable

SUFFIX = ".tflite"
SIDECAR_SUFFIX = ".json"
QUANTIZE_CHOICES = ("none", "float16", "dynamic_int8", "int8")


def sidecar_path(output: str) -> str:
  """`model.tflite` -> `model.tflite.json`, the metadata beside it."""
  return output + SIDECAR_SUFFIX


def _reason(error: Exception) -> str:
  """The converter's reason in one line: the ops without a builtin, else its first line."""
  text = str(error)
  ops = sorted(set(re.findall(r"'(tf\.\w+)' op is neither a custom op nor a flex op", text)))
  if ops:
    return (f"{', '.join(ops)} {'has' if len(ops) == 1 else 'have'} no LiteRT builtin "
            "(TF Select/Flex ops are not used: they need the TF runtime on the device)")
  lines = [line.strip() for line in text.splitlines() if line.strip()]
  return lines[0] if lines else type(error).__name__


def representative_clips(file_pattern, geometry, max_clips: int = 300
                         ) -> Callable[[], Iterable[List[np.ndarray]]]:
  """int8 calibration clips from records: evaluation's centre view, as the export's uint8 input.

  One clip per video (the middle one) at the model's geometry, up to `max_clips`; the [-1, 1]
  values the records pipeline makes are mapped back to uint8 (rounded where resizing blended).
  """
  from d3d_tf.data import datasets  # pylint: disable=g-import-not-at-top  (only for int8)
  flow = geometry.modality == "flow"
  dataset = datasets.eval_dataset(
      file_pattern, num_clips=1, num_frames=geometry.num_frames, stride=geometry.stride,
      crop_size=geometry.crop_size, crop_fraction=geometry.crop_fraction, with_rgb=not flow,
      with_flow=flow, batch_size=1).take(int(max_clips))
  key = "flow" if flow else "rgb"

  def clips():
    for features, _ in dataset:
      unit = features[key].numpy()
      yield [np.clip(np.rint((unit + 1.0) * 127.5), 0, 255).astype(np.uint8)]

  return clips


def _converter(function, variables, quantize: str,
               representative: Optional[Callable[[], Iterable[List[np.ndarray]]]]):
  holder = tf.Module()
  # The converter freezes the variables its trackable object holds; Keras 3 variables wrap
  # tf.Variables, which are the ones the traced function reads.
  holder.variables_to_freeze = [v.value for v in variables]
  converter = tf.lite.TFLiteConverter.from_concrete_functions(
      [function.get_concrete_function()], holder)
  converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
  if quantize != "none":
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
  if quantize == "float16":
    converter.target_spec.supported_types = [tf.float16]
  if quantize == "int8":
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
  return converter


def export(model: keras.Model, labels: Sequence[str], output: str, *, quantize: str = "none",
           representative: Optional[Callable[[], Iterable[List[np.ndarray]]]] = None,
           num_frames: Optional[int] = None, crop_size: Optional[int] = None,
           overwrite: bool = False, source: str = "the model",
           notes: Optional[List[str]] = None) -> str:
  """Converts `model` to `output` (a `.tflite` file) and its sidecar; returns `output`.

  Args:
    model: Keras video classifier returning logits (RGB or flow).
    labels: Class names in index order.
    output: Path of the `.tflite` file; it and `sidecar_path(output)` are written whole or not
      at all.
    quantize: One of `QUANTIZE_CHOICES`.
    representative: For `int8`: a callable yielding `[uint8 clip [1, T, S, S, C]]` lists.
    num_frames, crop_size: The clip shape the file takes; None: the model's geometry.
    overwrite: Replace existing files.
    source: The model's name in messages.
    notes: If a list, the overrides of the model's geometry are appended to it.

  Raises:
    ValueError: a model or op LiteRT cannot take (one line naming the reason), a bad
      --output or --quantize, or int8 without representative clips.
    FileExistsError, FileNotFoundError: see `portable.check_output`.
  """
  if quantize not in QUANTIZE_CHOICES:
    raise ValueError(f"--quantize must be one of {', '.join(QUANTIZE_CHOICES)}; "
                     f"received {quantize!r}.")
  if quantize == "int8" and representative is None:
    raise ValueError("--quantize=int8 calibrates on clips: pass --representative_files "
                     "(records of clips like those the model will see).")
  portable.check_output(output, SUFFIX, "litert", overwrite)
  geometry = portable.served_geometry(model, labels, num_frames=num_frames, crop_size=crop_size,
                                      source=source, notes=notes)
  with frame_ops_policy.use_policy(portable.formulation("litert")):
    function, _ = portable.clip_function(model, geometry)
    converter = _converter(function, model.variables, quantize, representative)
    try:
      flatbuffer = converter.convert()
    except Exception as e:  # pylint: disable=broad-except  (ConverterError and friends)
      raise ValueError(f"litert: cannot convert {source}: {_reason(e)}") from None
  meta = {k: json.loads(v) for k, v in portable.metadata(geometry, "litert", quantize).items()}
  portable.write_atomically({
      sidecar_path(output): json.dumps(meta, indent=2).encode("utf-8"),
      output: flatbuffer,
  })
  return output


def export_from_files(model_path: str, label_map_path: Optional[str], output: str, *,
                      representative_files=None, max_representative_clips: int = 300,
                      **kwargs) -> str:
  """`export` of a `.keras` file; labels: --label_map, else the model's, else the file beside.

  `representative_files` (a glob pattern or a list, records like evaluation's) supplies the
  int8 calibration clips (`representative_clips`) at the exported geometry.
  """
  model, labels = portable.load_for_export(model_path, label_map_path)
  if representative_files:
    geometry = portable.served_geometry(model, labels, num_frames=kwargs.get("num_frames"),
                                        crop_size=kwargs.get("crop_size"), source=model_path)
    kwargs["representative"] = representative_clips(representative_files, geometry,
                                                     max_representative_clips)
  return export(model, labels, output, source=model_path, **kwargs)
