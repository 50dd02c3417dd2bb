"""The function ONNX and LiteRT exports hold: uint8 clips in, `logits` and `probabilities` out.

Unlike the SavedModel (`module.py`), which crops and resizes raw frames in its graph, these
targets take clips already cropped and resized to the model's `crop_size`: uint8
`[batch, num_frames, crop_size, crop_size, channels]`, as a phone's camera pipeline or a
decoder on an edge box hands them over (`d3d_tf.predict` does it for its users). RGB pixels and
a flow model's quantized flow (uint8 at the records' bound) take the same map to [-1, 1]
(`processors.normalize_rgb`, core arithmetic every runtime has) inside the graph.

The one layer that no portable runtime takes as it is, the head's `AvgPool3D` (LiteRT has no
3D pool builtin), is replaced by a VALID stride-1 average over the same window computed as two
2D average pools: a mean over a kt x kh x kw window of complete positions is the mean over time
of the spatial means, so the logits are those of `LogitsPool3D` up to float rounding. Every
other layer is the trained model's own (shared, not copied), so the exported weights are the
model's.
"""

import dataclasses
import json
import os
from typing import Dict, List, Optional, Sequence, Tuple

import keras
import tensorflow as tf

from d3d_tf.models import frame_ops_policy
from d3d_tf.serving import preprocess
from d3d_tf.data import processors
from d3d_tf.models import clip_geometry as geometry_lib
from d3d_tf.models.s3dg_classifier import LogitsPool3D

INPUT_NAME = "frames"
OUTPUT_NAMES = ("logits", "probabilities")
# Keys of the metadata both formats carry (ONNX metadata_props; the LiteRT sidecar JSON).
LABELS_KEY = "labels"
GEOMETRY_KEY = "clip_geometry"
EXPORT_KEY = "d3d_export"


def avg_pool3d_as_pool2d(inputs: tf.Tensor, sizes: Sequence[int],
                         window: Sequence[int]) -> tf.Tensor:
  """VALID, stride-1 average pool of `[B, T, H, W, C]` of static `sizes` (T, H, W), 2D pools.

  Every window is complete (VALID), so its mean is the mean over its kt frames of the kh x kw
  spatial means: a spatial 2D pool of every frame, then a 2D pool over (time, pixels).
  """
  kt, kh, kw = (int(w) for w in window)
  time, height, width = (int(s) for s in sizes)
  channels = inputs.shape[-1]
  x = tf.reshape(inputs, [-1, height, width, channels])
  x = tf.nn.avg_pool2d(x, (kh, kw), 1, "VALID")
  out_h, out_w = height - kh + 1, width - kw + 1
  x = tf.reshape(x, [-1, time, out_h * out_w, channels])
  x = tf.nn.avg_pool2d(x, (kt, 1), 1, "VALID")
  return tf.reshape(x, [-1, time - kt + 1, out_h, out_w, channels])


class PortableLogitsPool3D(keras.layers.Layer):
  """`LogitsPool3D` (same window rule) as 2D average pools; static T, H, W only."""

  def __init__(self, pool_size, **kwargs):
    super().__init__(**kwargs)
    self.pool_size = tuple(int(p) for p in pool_size)

  def build(self, input_shape):
    # The symbolic shape is static where the traced one may not be (the frame ops' reshapes
    # lose the time axis); the pools are built for these sizes.
    self._sizes = tuple(input_shape[1:4])
    if None in self._sizes:
      raise ValueError(f"The portable logits pool needs a static clip shape; got {input_shape}.")

  def call(self, inputs):
    window = tuple(min(s, p) for s, p in zip(self._sizes, self.pool_size))
    return avg_pool3d_as_pool2d(inputs, self._sizes, window)

  def compute_output_shape(self, input_shape):
    sizes = tuple(None if s is None else s - min(s, p) + 1
                  for s, p in zip(input_shape[1:4], self.pool_size))
    return (input_shape[0],) + sizes + (input_shape[-1],)


def portable_model(model: keras.Model, clip_shape: Sequence[int]) -> keras.Model:
  """`model` on `clip_shape` inputs, each `LogitsPool3D` swapped for `PortableLogitsPool3D`.

  The other layers are shared with `model`, not copied. `clip_shape` is (frames, height,
  width, channels): the static sizes the 2D pools are built for.
  """
  if not any(isinstance(layer, LogitsPool3D) for layer in model.layers):
    return model

  def swap(layer):
    if isinstance(layer, LogitsPool3D):
      return PortableLogitsPool3D(layer.pool_size, name=layer.name, dtype=layer.dtype_policy)
    return layer

  inputs = keras.Input(shape=tuple(clip_shape), name=model.inputs[0].name)
  return keras.models.clone_model(model, input_tensors=inputs, clone_function=swap)


def served_geometry(model: keras.Model, labels: Sequence[str], *,
                    num_frames: Optional[int] = None, crop_size: Optional[int] = None,
                    source: str = "the model",
                    notes: Optional[List[str]] = None) -> geometry_lib.ClipGeometry:
  """The model's geometry with the overrides given, and `labels`; checks channels and classes.

  Raises:
    ValueError: no stored geometry and an override missing, a label count that is not the
      model's class count, or a model whose input is not a 5D clip.
  """
  if len(model.input_shape) != 5:
    raise ValueError(f"{source} takes input of shape {model.input_shape}; only video models "
                     "([batch, frames, height, width, channels]) can be exported.")
  num_classes = int(model.output_shape[-1])
  if len(labels) != num_classes:
    raise ValueError(f"The label map has {len(labels)} classes but {source} outputs "
                     f"{num_classes}.")
  stored = geometry_lib.geometry_of(model)
  values, overrides = geometry_lib.resolve(
      stored, {"num_frames": num_frames, "crop_size": crop_size}, source)
  if notes is not None:
    notes.extend(overrides)
  channels = int(model.input_shape[-1])
  if stored is None:
    modality = geometry_lib.MODALITY_BY_CHANNELS.get(channels)
    if modality is None:
      raise ValueError(f"{source} takes {channels} input channels; only RGB (3) and flow (2) "
                       "models can be exported.")
    return geometry_lib.ClipGeometry(**values, modality=modality, labels=tuple(labels))
  return dataclasses.replace(stored, **values, labels=tuple(labels))


def clip_spec(geometry: geometry_lib.ClipGeometry) -> tf.TensorSpec:
  """uint8 `[None, num_frames, crop_size, crop_size, channels]`, named `frames`."""
  side = geometry.crop_size
  return tf.TensorSpec([None, geometry.num_frames, side, side, geometry.channels], tf.uint8,
                       name=INPUT_NAME)


def clip_function(model: keras.Model, geometry: geometry_lib.ClipGeometry):
  """The exported computation as a `tf.function` over `clip_spec(geometry)`.

  Returns:
    (function, input signature): uint8 clips -> {"logits", "probabilities"}, float32 [B, C].
  """
  spec = clip_spec(geometry)
  portable = portable_model(model, spec.shape[1:])

  def serve(frames):
    logits = tf.cast(portable(processors.normalize_rgb(frames), training=False), tf.float32)
    return {"logits": logits, "probabilities": tf.nn.softmax(logits, axis=-1)}

  signature = [spec]
  return tf.function(serve, input_signature=signature, autograph=False), signature


def crop_clips_uint8(frames, crop_size: int, crop_fraction: float) -> tf.Tensor:
  """Raw uint8 frames [B, T, H, W, 3] -> the exports' input: uint8 [B, T, S, S, 3].

  Evaluation's centre crop and bilinear resize (`preprocess.preprocess_frames` without the
  normalisation), rounded to uint8 as a camera pipeline delivers it.
  """
  resized = preprocess.center_crop_resize(tf.convert_to_tensor(frames, tf.uint8), crop_size,
                                          crop_fraction)
  return tf.cast(tf.clip_by_value(tf.round(tf.cast(resized, tf.float32)), 0.0, 255.0), tf.uint8)


def metadata(geometry: geometry_lib.ClipGeometry, export_format: str,
             quantize: str = "none") -> Dict[str, str]:
  """String metadata that travels with the file: labels, geometry, how it was made (JSON)."""
  made = {"format": export_format, "quantize": quantize, "input": INPUT_NAME,
          "input_dtype": "uint8", "input_layout": "NTHWC", "outputs": list(OUTPUT_NAMES),
          "normalization": "x * 2 / 255 - 1", "tensorflow_version": tf.__version__,
          "keras_version": keras.__version__}
  return {LABELS_KEY: json.dumps(list(geometry.labels or ())),
          GEOMETRY_KEY: json.dumps(geometry.to_dict()),
          EXPORT_KEY: json.dumps(made)}


def load_for_export(model_path: str, label_map_path: Optional[str]
                    ) -> Tuple[keras.Model, List[str]]:
  """A `.keras` classifier and its labels: --label_map, else the model's, else the file beside."""
  from d3d_tf.models import model_files  # pylint: disable=g-import-not-at-top
  from d3d_tf.serving import export_lib  # pylint: disable=g-import-not-at-top
  model = export_lib.load_keras_model(model_path)
  labels, _ = model_files.resolve_labels(label_map_path, geometry_lib.geometry_of(model),
                                         model_path)
  return model, labels


def check_output(path: str, suffix: str, export_format: str, overwrite: bool) -> None:
  """Raises unless `path` ends with `suffix`, its folder exists and it is new (or `overwrite`)."""
  if not path.endswith(suffix):
    raise ValueError(f"--output={path!r}: a {export_format} export is a {suffix} file.")
  folder = os.path.dirname(os.path.abspath(path))
  if not os.path.isdir(folder):
    raise FileNotFoundError(f"--output={path!r}: folder {folder!r} does not exist.")
  if os.path.exists(path) and not overwrite:
    raise FileExistsError(f"--output={path!r} exists; pass --overwrite to replace it.")


def write_atomically(files: Dict[str, bytes]) -> None:
  """Writes each path's bytes to `path.tmp`, then renames them all: no half-written export."""
  try:
    for path, data in files.items():
      with open(path + ".tmp", "wb") as f:
        f.write(data)
    for path in files:
      os.replace(path + ".tmp", path)
  finally:
    for path in files:
      if os.path.exists(path + ".tmp"):
        os.remove(path + ".tmp")


def formulation(fmt: str) -> frame_ops_policy.FormulationPolicy:
  """The formulation an ONNX or LiteRT file is traced under, whatever the exporting machine
  would pick: LiteRT has no 3D max-pool builtin, so 2D ops over frames; ONNX has native 3D
  convs and pools, which its runtimes (ONNX Runtime, TensorRT) run directly."""
  if fmt == "litert":
    return frame_ops_policy.FormulationPolicy(mode="2d", device="cpu")
  return frame_ops_policy.FormulationPolicy(mode="3d", device="gpu")
