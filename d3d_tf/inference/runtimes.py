"""Runs ONNX and LiteRT exports (`serving/onnx_export.py`, `litert_export.py`) without TF.

`load(path)` opens a `.onnx` file with ONNX Runtime or a `.tflite` file with LiteRT's
interpreter (`ai_edge_litert`), each imported only then: they are extras, and a missing one is a
one-line error naming its install command. The result classifies uint8 clips already cropped
and resized to the file's geometry, and carries the labels and geometry stored with the file,
so `predict` and `evaluate` measure exactly what is shipped.
"""

import dataclasses
import json
import os
from typing import Callable, Dict, List, Optional

import numpy as np

ONNX_SUFFIX = ".onnx"
LITERT_SUFFIX = ".tflite"
SUFFIXES = (ONNX_SUFFIX, LITERT_SUFFIX)
INSTALL = {ONNX_SUFFIX: "pip install -e .[onnx]", LITERT_SUFFIX: "pip install -e .[litert]"}
# The metadata keys the exporters write (`serving/portable.py`); repeated so this module does
# not import TF.
LABELS_KEY = "labels"
GEOMETRY_KEY = "clip_geometry"
INPUT_NAME = "frames"


class RuntimeMissingError(ValueError):
  """The runtime a file needs is not installed; the message names the pip command."""


@dataclasses.dataclass
class PortableModel:
  """A loaded export: `logits(uint8 [B, T, S, S, C]) -> float32 [B, num_classes]`.

  Attributes:
    path: The file.
    runtime: "onnxruntime" or "litert".
    run: The runtime's call, clips -> {"logits", "probabilities"}.
    labels: Class names in index order.
    geometry: The stored clip geometry (`ClipGeometry.to_dict()`): num_frames, crop_size,
      crop_fraction, stride, modality, ...
  """
  path: str
  runtime: str
  run: Callable[[np.ndarray], Dict[str, np.ndarray]]
  labels: List[str]
  geometry: Dict

  @property
  def clip_shape(self):
    """(num_frames, crop_size, crop_size, channels) of the clips it takes."""
    g = self.geometry
    channels = 2 if g.get("modality") == "flow" else 3
    return (int(g["num_frames"]), int(g["crop_size"]), int(g["crop_size"]), channels)

  def logits(self, clips: np.ndarray) -> np.ndarray:
    """uint8 clips [B, T, S, S, C] -> float32 logits [B, num_classes]."""
    clips = np.asarray(clips)
    if clips.dtype != np.uint8 or tuple(clips.shape[1:]) != self.clip_shape:
      raise ValueError(f"{self.path} takes uint8 clips of shape [batch, "
                       f"{', '.join(map(str, self.clip_shape))}]; received {clips.dtype} "
                       f"{list(clips.shape)}.")
    return np.asarray(self.run(clips)["logits"], np.float32)

  def logits_from_unit(self, clips: np.ndarray) -> np.ndarray:
    """Logits of float clips in [-1, 1] (the records pipeline's input), rounded to uint8."""
    return self.logits(unit_to_uint8(clips))


def unit_to_uint8(clips: np.ndarray) -> np.ndarray:
  """[-1, 1] model input -> the uint8 values it came from (rounded where resizing blended)."""
  return np.clip(np.rint((np.asarray(clips, np.float32) + 1.0) * 127.5), 0, 255).astype(np.uint8)


def _missing(suffix: str, error: ImportError) -> RuntimeMissingError:
  kind = "ONNX Runtime" if suffix == ONNX_SUFFIX else "LiteRT"
  return RuntimeMissingError(f"{kind} is not installed ({error.name} is missing): "
                             f"{INSTALL[suffix]}")


def _load_onnx(path: str, num_threads: Optional[int]) -> PortableModel:
  try:
    import onnxruntime  # pylint: disable=g-import-not-at-top  (an extra: imported when used)
  except ImportError as e:
    raise _missing(ONNX_SUFFIX, e) from None
  options = onnxruntime.SessionOptions()
  if num_threads:
    options.intra_op_num_threads = int(num_threads)
  session = onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])
  meta = session.get_modelmeta().custom_metadata_map
  if GEOMETRY_KEY not in meta:
    raise ValueError(f"{path} has no {GEOMETRY_KEY!r} metadata: not a d3d_tf export.")
  names = [o.name for o in session.get_outputs()]

  def run(clips):
    return dict(zip(names, session.run(names, {INPUT_NAME: clips})))

  return PortableModel(path, "onnxruntime", run, json.loads(meta[LABELS_KEY]),
                       json.loads(meta[GEOMETRY_KEY]))


def _load_litert(path: str, num_threads: Optional[int]) -> PortableModel:
  sidecar = path + ".json"
  if not os.path.isfile(sidecar):
    raise FileNotFoundError(f"{path} has no metadata file {sidecar} beside it (labels, clip "
                            "geometry); export it again with d3d_tf.export --format=litert.")
  try:
    from ai_edge_litert import interpreter as litert  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise _missing(LITERT_SUFFIX, e) from None
  with open(sidecar, encoding="utf-8") as f:
    meta = json.load(f)
  runner = litert.Interpreter(model_path=path, num_threads=num_threads).get_signature_runner()

  def run(clips):
    return runner(**{INPUT_NAME: clips})

  return PortableModel(path, "litert", run, list(meta[LABELS_KEY]), dict(meta[GEOMETRY_KEY]))


def load(path: str, num_threads: Optional[int] = None) -> PortableModel:
  """Opens a `.onnx` or `.tflite` export.

  Raises:
    FileNotFoundError: no such file (or a `.tflite` without its metadata JSON).
    RuntimeMissingError: the runtime is not installed (the message names the extra).
    ValueError: another suffix, or a file without d3d_tf's metadata.
  """
  suffix = os.path.splitext(path)[1].lower()
  if suffix not in SUFFIXES:
    raise ValueError(f"{path!r} is not an ONNX (.onnx) or LiteRT (.tflite) file.")
  if not os.path.isfile(path):
    raise FileNotFoundError(f"Model {path!r} does not exist.")
  loader = _load_onnx if suffix == ONNX_SUFFIX else _load_litert
  return loader(path, num_threads)


def is_portable(path: str) -> bool:
  """Whether `path` names a file `load` opens (by its suffix)."""
  return os.path.splitext(path)[1].lower() in SUFFIXES
