"""A trained model cut at a named layer: uint8 windows in, one feature vector per window out.

The clips a window becomes are the evaluation's (`serving.preprocess`: centre crop of
`crop_fraction` of the short side, resized to the model's crop, [-1, 1]), or the three crops
along the long side (`crop_boxes.three_crop_boxes`) averaged. The clip length, stride and crop
are the model's stored `ClipGeometry`, as in every command that consumes a model.
"""

import dataclasses
from typing import Callable

import numpy as np
import tensorflow as tf

from d3d_tf.data import crop_boxes
from d3d_tf.data import processors
from d3d_tf.inference import features_config
from d3d_tf.models import clip_geometry as geometry_lib
from d3d_tf.models import model_files
from d3d_tf.serving import preprocess


@dataclasses.dataclass
class FeatureModel:
  """`features_fn(float32 [B, V, T, S, S, 3]) -> float32 [B, D]` (or [B, T', D] keeping time).

  Attributes:
    features_fn: the cut model on a batch of preprocessed windows (V views each, averaged).
    geometry: the model's clip geometry (num_frames, stride, crop).
    endpoint: the layer extracted (an S3D-G endpoint, 'logits' or 'pooled').
    model_path: the .keras file.
  """
  features_fn: Callable[[np.ndarray], np.ndarray]
  geometry: geometry_lib.ClipGeometry
  endpoint: str
  model_path: str


def cut(model, endpoint: str, keep_time: bool, path: str):
  """(the keras model whose output is the endpoint, the endpoint's resolved name, time axis?)."""
  import keras  # pylint: disable=g-import-not-at-top
  from d3d_tf import models  # pylint: disable=g-import-not-at-top
  logits, pooled = features_config.LOGITS, features_config.POOLED
  if isinstance(model, models.VideoSwinClassifier):
    endpoint = endpoint or pooled
    if endpoint not in (pooled, logits):
      raise ValueError(f"--endpoint={endpoint!r} is not a layer of the VideoSwin model "
                       f"{path}: use '{pooled}' (its averaged tokens) or '{logits}'.")
    if keep_time:
      raise ValueError("--keep_time needs an S3D-G endpoint; VideoSwin's 'pooled' and "
                       "'logits' have no time axis.")
    if endpoint == logits:
      return model, endpoint, False
    return keras.Model(model.input, model.get_layer("Logits_pool").output), endpoint, False
  backbone = model if isinstance(model, models.S3DGBackbone) else getattr(model, "backbone", None)
  if not isinstance(backbone, models.S3DGBackbone):
    raise ValueError(f"--model {path} is a {type(model).__name__}; extract_features reads "
                     "S3DGClassifier, S3DGBackbone and VideoSwinClassifier models.")
  names = list(backbone.output)
  endpoint = endpoint or backbone.final_endpoint
  if endpoint == logits and backbone is not model:
    if keep_time:
      raise ValueError("--keep_time needs an S3D-G endpoint; 'logits' are pooled already.")
    return model, endpoint, False
  if endpoint not in names:
    extra = [logits] if backbone is not model else []
    raise ValueError(f"--endpoint={endpoint!r} is not an endpoint of {path}; it has "
                     f"{', '.join(names + extra)}.")
  return keras.Model(backbone.input, backbone.output[endpoint]), endpoint, True


def load(path: str, endpoint: str = "", keep_time: bool = False) -> FeatureModel:
  """The model at `path` (a .keras file or a model dir) cut at `endpoint` ('' = the last
  feature layer), pooled over space and time (over space only with `keep_time`).

  Raises:
    FileNotFoundError: no model there.
    ValueError: not a model this reads, no stored geometry, or an endpoint it lacks.
  """
  file = model_files.model_path(path, "model")
  model = model_files.load_keras(file, "model")
  geometry = geometry_lib.geometry_of(model)
  if geometry is None:
    raise ValueError(f"--model {file!r} does not record the clip geometry it was trained with; "
                     "extract_features needs a model saved by d3d_tf.train or "
                     "d3d_tf.convert_weights.")
  if geometry.modality != "rgb":
    raise ValueError(f"--model {file!r} reads {geometry.modality}; extract_features feeds "
                     "RGB frames.")
  cut_model, endpoint, spatial = cut(model, endpoint, keep_time, file)
  axes = ([2, 3] if keep_time else [1, 2, 3]) if spatial else []

  @tf.function(reduce_retracing=True)
  def features_fn(clips):
    shape = tf.shape(clips)
    flat = tf.reshape(clips, tf.concat([[shape[0] * shape[1]], shape[2:]], 0))
    out = tf.cast(cut_model(flat, training=False), tf.float32)
    if axes:
      out = tf.reduce_mean(out, axis=axes)
    out = tf.reshape(out, tf.concat([shape[:2], tf.shape(out)[1:]], 0))
    return tf.reduce_mean(out, axis=1)  # Over the views.

  return FeatureModel(lambda x: features_fn(tf.constant(x)).numpy(), geometry, endpoint, file)


@tf.function(reduce_retracing=True)
def _three_views(frames, crop_size: int, crop_fraction: float):
  shape = tf.shape(frames)
  height, width = shape[1], shape[2]
  views = []
  for box in tf.unstack(crop_boxes.three_crop_boxes(height, width, crop_fraction)):
    window = crop_boxes.box_to_pixels(box, height, width)
    views.append(processors.normalize_rgb(processors.crop_and_resize(frames, window,
                                                                     crop_size)))
  return tf.stack(views)


@tf.function(reduce_retracing=True)
def _centre_view(frames, crop_size: int, crop_fraction: float):
  return preprocess.preprocess_frames(frames[None], crop_size, crop_fraction)


def preprocess_window(frames: np.ndarray, geometry: geometry_lib.ClipGeometry,
                      views: int = 1) -> np.ndarray:
  """uint8 [T, H, W, 3] -> float32 [V, T, S, S, 3]: the centre crop, or the three crops."""
  fn = _centre_view if views == 1 else _three_views
  return fn(tf.constant(frames), geometry.crop_size, geometry.crop_fraction).numpy()

