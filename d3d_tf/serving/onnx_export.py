"""Writes a classifier as an ONNX file (ONNX Runtime, TensorRT) with its labels and geometry.

The converter is `tf2onnx` 1.17, at opset 17: it converts the exported `tf.function`
(`portable.clip_function`: uint8 clips, normalisation, `logits` and `probabilities`), frozen to
constants first (`_convert`), op by op, and ONNX Runtime reproduces the Keras logits to float rounding.
Keras 3's `model.export(format="onnx")` goes through the same converter on the TF backend but
exports the bare model (float input, no normalisation, unnamed outputs) and offers no place for
metadata, so the function is converted directly. Labels, the clip geometry and how the file was
made are the model's `metadata_props` (JSON strings, `portable.metadata`).
"""

import logging
from typing import List, Optional, Sequence

import keras

from d3d_tf.models import frame_ops_policy
from d3d_tf.serving import portable

OPSET = 17
SUFFIX = ".onnx"
INSTALL = "pip install -e .[onnx]"


def _import_converter():
  try:
    import tf2onnx  # pylint: disable=g-import-not-at-top  (an extra: imported when used)
  except ImportError as e:
    raise ValueError(f"onnx export needs tf2onnx and onnx ({e.name} is missing): "
                     f"{INSTALL}") from None
  return tf2onnx


def _one_line(error: Exception) -> str:
  text = str(error).strip().splitlines()
  return text[0] if text else type(error).__name__


def _convert(tf2onnx, function):
  """The ONNX proto of `function`, frozen first: every capture becomes a constant.

  `tf2onnx.convert.from_function` takes each tensor the function captures for a graph input,
  and only variables are folded back: a layer holding plain tensors (the torchvision variant's
  input `Normalization` keeps its mean and variance as constants) would leave the file with
  inputs no caller can feed. Freezing folds them all, so `frames` is the only input.
  """
  from tensorflow.python.framework import convert_to_constants  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  concrete = function.get_concrete_function()
  frozen = convert_to_constants.convert_variables_to_constants_v2(concrete)
  inputs = [t.name for t in frozen.inputs]
  # The frozen outputs are the original dict's values in `tf.nest` order.
  keys = tf.nest.flatten({key: key for key in concrete.structured_outputs})
  outputs = dict(zip(keys, (t.name for t in frozen.outputs)))
  rename = dict(zip(inputs, [portable.INPUT_NAME]))
  rename.update({name: key for key, name in outputs.items()})
  proto, _ = tf2onnx.convert.from_graph_def(
      frozen.graph.as_graph_def(), name="d3d_tf", input_names=inputs,
      output_names=[outputs[key] for key in portable.OUTPUT_NAMES], opset=OPSET,
      tensors_to_rename=rename)
  return proto


def export(model: keras.Model, labels: Sequence[str], output: str, *,
           num_frames: Optional[int] = None, crop_size: Optional[int] = None,
           overwrite: bool = False, source: str = "the model",
           notes: Optional[List[str]] = None,
           policy: Optional[frame_ops_policy.FormulationPolicy] = None) -> str:
  """Converts `model` to `output` (a `.onnx` file); returns `output`.

  Args:
    model: Keras video classifier returning logits (RGB or flow).
    labels: Class names in index order.
    output: Path of the `.onnx` file, written whole or not at all.
    num_frames, crop_size: The clip shape the file takes; None: the model's geometry.
    overwrite: Replace an existing file.
    source: The model's name in messages.
    notes: If a list, the overrides of the model's geometry are appended to it.
    policy: The formulation the graph is traced with; None: `portable.formulation("onnx")`
      (native 3D ops). benchmarks/inference_runtimes.py also times the 2D-over-frames one.

  Raises:
    ValueError: a model or op ONNX cannot take (one line naming the reason), a bad --output,
      or the converter missing.
    FileExistsError, FileNotFoundError: see `portable.check_output`.
  """
  portable.check_output(output, SUFFIX, "onnx", overwrite)
  geometry = portable.served_geometry(model, labels, num_frames=num_frames, crop_size=crop_size,
                                      source=source, notes=notes)
  tf2onnx = _import_converter()
  logging.getLogger("tf2onnx").setLevel(logging.ERROR)
  with frame_ops_policy.use_policy(policy or portable.formulation("onnx")):
    function, _ = portable.clip_function(model, geometry)
    try:
      proto = _convert(tf2onnx, function)
    except Exception as e:  # pylint: disable=broad-except  (the converter's errors vary by op)
      raise ValueError(f"onnx: cannot convert {source}: {_one_line(e)}") from None
  for key, value in portable.metadata(geometry, "onnx").items():
    entry = proto.metadata_props.add()
    entry.key, entry.value = key, value
  portable.write_atomically({output: proto.SerializeToString()})
  return output


def export_from_files(model_path: str, label_map_path: Optional[str], output: str,
                      **kwargs) -> str:
  """`export` of a `.keras` file; labels: --label_map, else the model's, else the file beside."""
  model, labels = portable.load_for_export(model_path, label_map_path)
  return export(model, labels, output, source=model_path, **kwargs)
