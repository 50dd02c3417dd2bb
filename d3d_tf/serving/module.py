"""The tf.Module that becomes the SavedModel: preprocessing + classifier + labels in one graph.

Clients send what they have (uint8 frames, or JPEG bytes for compact REST requests); the graph
resizes and centre-crops exactly as evaluation does (`preprocess.preprocess_frames`) and
returns logits, probabilities and the top-k classes with their names baked in from the label
map, so a served model needs no Python and no side files. A third signature, `features`,
returns the embedding `extract_features` stores by default (S3D-G: its final endpoint pooled
over time and space; VideoSwin: its pooled tokens), for retrieval, localisation or
captioning models that read video features.
"""

import types
from typing import Dict, Sequence

import keras
import tensorflow as tf

from d3d_tf.serving import preprocess

FRAMES_INPUT = "frames"
JPEG_INPUT = "jpeg_frames"
SERVING_DEFAULT = "serving_default"
PREDICT_JPEG = "predict_jpeg"
FEATURES = "features"  # The signature's name and its one output key.
QUANTIZE_CHOICES = ("none", "float16")

FRAMES_SPEC = tf.TensorSpec([None, None, None, None, 3], tf.uint8, name=FRAMES_INPUT)
JPEG_SPEC = tf.TensorSpec([None, None], tf.string, name=JPEG_INPUT)


def check_exportable(model: keras.Model, labels: Sequence[str]) -> int:
  """Raises ValueError unless `model` is an RGB classifier with one label per class."""
  channels = model.input_shape[-1]
  if channels != 3:
    raise ValueError(f"Only RGB models (3 input channels) can be exported; this model takes "
                     f"{channels} channels (a flow model needs optical flow, which the "
                     "serving graph does not compute).")
  num_classes = int(model.output_shape[-1])
  if len(labels) != num_classes:
    raise ValueError(f"The label map has {len(labels)} classes but the model outputs "
                     f"{num_classes}.")
  return num_classes


class ClassifierModule(tf.Module):
  """Serves an RGB S3D-G classifier behind two signatures.

  Args:
    model: A Keras classifier with 3 input channels returning logits [B, num_classes].
    labels: Class names in index order (len == num_classes).
    crop_size: Model input side S.
    crop_fraction: Centre-crop side as a fraction of the short side.
    top_k: Number of top classes returned (capped at num_classes).
    quantize: "none", or "float16": weights are stored in float16 (half the file) and cast
      back to float32 at run time; compute stays float32.
    geometry_json: The served `ClipGeometry` as JSON, kept in the graph (`clip_geometry`) so a
      client of the SavedModel alone knows the clip length it expects.
    fixed_frames: 0 (any clip length, S3D-G), or the only clip length the model takes
      (VideoSwin: a `fixed_size` geometry); other lengths fail with a message saying so.
  """

  def __init__(self, model: keras.Model, labels: Sequence[str], crop_size: int = 112,
               crop_fraction: float = 0.875, top_k: int = 5, quantize: str = "none",
               geometry_json: str = "", fixed_frames: int = 0):
    super().__init__(name="d3d_classifier")
    num_classes = check_exportable(model, labels)
    if quantize not in QUANTIZE_CHOICES:
      raise ValueError(f"quantize must be one of {QUANTIZE_CHOICES}. Received: {quantize!r}")
    self.crop_size = int(crop_size)
    self.crop_fraction = float(crop_fraction)
    self.top_k = min(int(top_k), num_classes)
    self.fixed_frames = int(fixed_frames)
    self.quantize = quantize
    self.labels = tf.Variable(list(labels), dtype=tf.string, trainable=False, name="labels")
    self.clip_geometry = tf.Variable(geometry_json, dtype=tf.string, trainable=False,
                                     name="clip_geometry")
    # The Keras model is not a tracked attribute: saving it would add its own object graph and
    # trace its default signatures (two more traces of the whole network per export). Only its
    # variables are tracked, float16 copies when quantized.
    self._untracked = types.SimpleNamespace(model=model)  # Not a trackable attribute.
    self._untracked.features, self._untracked.pool_axes = _features_model(model)
    if quantize == "float16":
      # The Keras model runs statelessly on the float16 copies.
      self.trainable_f16 = [tf.Variable(tf.cast(v.value, tf.float16), trainable=False)
                            for v in model.trainable_variables]
      self.non_trainable_f16 = [tf.Variable(tf.cast(v.value, tf.float16), trainable=False)
                                for v in model.non_trainable_variables]
    else:
      self.model_variables = [v.value for v in model.variables]  # What the graph reads.

  def _logits(self, inputs: tf.Tensor) -> tf.Tensor:
    model = self._untracked.model
    if self.quantize == "float16":
      cast = lambda vs: [tf.cast(v, tf.float32) for v in vs]
      logits, _ = model.stateless_call(cast(self.trainable_f16), cast(self.non_trainable_f16),
                                       inputs, training=False)
      return tf.cast(logits, tf.float32)
    return tf.cast(model(inputs, training=False), tf.float32)

  def _pooled_features(self, inputs: tf.Tensor) -> tf.Tensor:
    model, net = self._untracked.model, self._untracked.features
    if self.quantize == "float16":  # The cut model's variables are some of the model's.
      stored = {id(v): tf.cast(q, tf.float32) for v, q in zip(
          model.trainable_variables + model.non_trainable_variables,
          self.trainable_f16 + self.non_trainable_f16)}
      out, _ = net.stateless_call([stored[id(v)] for v in net.trainable_variables],
                                  [stored[id(v)] for v in net.non_trainable_variables],
                                  inputs, training=False)
    else:
      out = net(inputs, training=False)
    out = tf.cast(out, tf.float32)
    axes = self._untracked.pool_axes
    return tf.reduce_mean(out, axis=axes) if axes else out

  def _preprocessed(self, frames: tf.Tensor) -> tf.Tensor:
    """uint8 [B, T, H, W, 3] -> the model's input, after checking the frame count and size."""
    shape = tf.shape(frames)
    checks = [
        tf.debugging.assert_greater(shape[1], 0, message="Expected at least 1 frame per video "
                                    "(the time axis, dimension 1, is empty)."),
        tf.debugging.assert_greater(shape[2], 0, message="Frames have zero height."),
        tf.debugging.assert_greater(shape[3], 0, message="Frames have zero width."),
    ]
    if self.fixed_frames:
      checks.append(tf.debugging.assert_equal(
          shape[1], self.fixed_frames, message=f"This model takes exactly {self.fixed_frames} "
          "frames per video (dimension 1); it was built for that clip length."))
    with tf.control_dependencies(checks):
      return preprocess.preprocess_frames(frames, self.crop_size, self.crop_fraction)

  def _outputs(self, frames: tf.Tensor) -> Dict[str, tf.Tensor]:
    """uint8 [B, T, H, W, 3] -> the output dict."""
    logits = self._logits(self._preprocessed(frames))
    probabilities = tf.nn.softmax(logits, axis=-1)
    scores, indices = tf.math.top_k(probabilities, k=self.top_k)
    return {
        "logits": logits,
        "probabilities": probabilities,
        "top_k_indices": indices,
        "top_k_labels": tf.gather(self.labels, indices),
        "top_k_scores": scores,
    }

  def serve_frames(self, frames):
    """uint8 frames [batch, T, H, W, 3] (any T >= 1, H, W) -> outputs."""
    return self._outputs(frames)

  def serve_jpeg(self, jpeg_frames):
    """string [batch, T] JPEG frames (all frames of a request the same size) -> outputs."""
    tf.debugging.assert_greater(tf.size(jpeg_frames), 0,
                                message="Expected at least 1 JPEG frame per video.")
    return self._outputs(preprocess.decode_jpeg_batch(jpeg_frames))

  def serve_features(self, frames):
    """uint8 frames [batch, T, H, W, 3] -> {"features": float32 [batch, D]}: the pooled
    embedding, preprocessed as `serve_frames` does."""
    return {FEATURES: self._pooled_features(self._preprocessed(frames))}

  def signatures(self) -> Dict[str, tf.types.experimental.ConcreteFunction]:
    """The serving signatures, each traced once (`features` only for the models it knows).

    The functions are made here, not as `tf.function` attributes: `tf.saved_model.save` traces
    every function attribute again, and each trace of S3D-G costs seconds.
    """
    signatures = {
        SERVING_DEFAULT: tf.function(self.serve_frames).get_concrete_function(FRAMES_SPEC),
        PREDICT_JPEG: tf.function(self.serve_jpeg).get_concrete_function(JPEG_SPEC),
    }
    if self._untracked.features is not None:
      signatures[FEATURES] = tf.function(self.serve_features).get_concrete_function(
          FRAMES_SPEC)
    return signatures


def _features_model(model: keras.Model):
  """(the model cut at its last feature layer, the axes to average), as `extract_features`
  cuts it by default; (None, None) for a model other than S3D-G and VideoSwin classifiers."""
  from d3d_tf.inference import feature_model  # pylint: disable=g-import-not-at-top
  try:
    net, _, spatial = feature_model.cut(model, "", False, "the exported model")
  except ValueError:
    return None, None
  return net, ([1, 2, 3] if spatial else [])
