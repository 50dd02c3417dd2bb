"""What every d3d_tf classifier shares: its head arguments, its backbone and the clip geometry
(clips, class names, flow) it was trained on, carried in its Keras config.

`S3DGClassifier` and `VideoSwinClassifier` differ in their layers only; the argument checks,
the `clip_geometry` property and the config plumbing live here once. Each subclass adds its
own geometry rule (`_check_geometry`) and builds its functional graph.
"""

import keras

from d3d_tf.models import clip_geometry as geometry_lib


class ClassifierBase(keras.Model):
  """A functional Keras classifier with a backbone, a head and a stored `ClipGeometry`.

  Subclasses call `check_head_args` before building, `super().__init__(inputs=...,
  outputs=...)`, then `_set_head_config`. Their config is the base's plus `dtype` where
  `config_dtype` is True.
  """

  config_dtype = True

  @staticmethod
  def check_head_args(num_classes, dropout_keep_prob):
    """Raises ValueError for a class count below 1 or a keep probability outside (0, 1]."""
    if num_classes < 1:
      raise ValueError(f"num_classes must be >= 1. Received: num_classes={num_classes}")
    if not 0.0 < dropout_keep_prob <= 1.0:
      raise ValueError(
          f"dropout_keep_prob must be in (0, 1]. Received: dropout_keep_prob={dropout_keep_prob}")

  def _set_head_config(self, backbone, num_classes, dropout_keep_prob, clip_geometry):
    self.backbone = backbone
    self.num_classes = num_classes
    self.dropout_keep_prob = dropout_keep_prob
    self.clip_geometry = clip_geometry

  def _check_geometry(self, value):
    """The subclass's rule for a geometry (not None); returns the geometry to store."""
    return value

  @property
  def clip_geometry(self):
    """The `ClipGeometry` it was trained with (None when unknown)."""
    return self._clip_geometry

  @clip_geometry.setter
  def clip_geometry(self, value):
    value = geometry_lib.coerce(value)
    if value is not None:
      value = self._check_geometry(value)
      if value.labels is not None and len(value.labels) != self.num_classes:
        raise ValueError(f"clip_geometry lists {len(value.labels)} labels; this model "
                         f"predicts {self.num_classes} classes.")
    self._clip_geometry = value

  def get_config(self):
    config = {"name": self.name, "trainable": self.trainable}
    if self.config_dtype:
      config["dtype"] = keras.saving.serialize_keras_object(self.dtype_policy)
    config.update({
        "backbone": keras.saving.serialize_keras_object(self.backbone),
        "num_classes": self.num_classes,
        "dropout_keep_prob": self.dropout_keep_prob,
        "clip_geometry": self._clip_geometry.to_dict() if self._clip_geometry else None,
    })
    return config

  @classmethod
  def from_config(cls, config):
    config = dict(config)
    config["backbone"] = keras.saving.deserialize_keras_object(config["backbone"])
    if isinstance(config.get("dtype"), dict):
      config["dtype"] = keras.saving.deserialize_keras_object(config["dtype"])
    return cls(**config)
