"""Writes a classifier as an ONNX file (ONNX Runtime, TensorRT) with its labels and geometry.

The converter is `tf2onnx` 1.17 (`convert.from_function`), at opset 17: it converts the
exported `tf.function` (`portable.clip_function`: uint8 clips, normalisation, `logits` and
`probabilities`) op by op, and ONNX Runtime reproduces the Keras logits to float rounding.
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


def export(model: keras.Model, labels: Sequence[str], output: str, *,
           num_frames: Optional[int] = None, crop_size: Optional[int] = None,
           overwrite: bool = False, source: str = "the model",
           notes: Optional[List[str]] = None) -> str:
  """Converts `model` to `output` (a `.onnx` file); returns `output`.

  Args:
    model: Keras video classifier returning logits (RGB or flow).
    labels: Class names in index order.
    output: Path of the `.onnx` file, written whole or not at all.
    num_frames, crop_size: The clip shape the file takes; None: the model's geometry.
    overwrite: Replace an existing file.
    source: The model's name in messages.
    notes: If a list, the overrides of the model's geometry are appended to it.

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
  with frame_ops_policy.use_policy(portable.formulation("onnx")):
    function, signature = portable.clip_function(model, geometry)
    try:
      proto, _ = tf2onnx.convert.from_function(function, input_signature=signature,
                                               opset=OPSET)
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
