"""Trains every probe of a run at once: one batch, each frozen model once, all its decoders.

All models see the same training clips, so their probes differ only in the features. The
frozen extractors run outside the gradient tape with `training=False`; gradients and the
optimizer touch the decoders only. The trainer also sums the training flow, whose mean is the
`mean_epe` reference prediction.
"""

import re
from typing import Dict, Tuple

import keras
import numpy as np
import tensorflow as tf

from d3d_tf.probing import metrics, targets

Key = Tuple[str, str]  # (model name, endpoint).


def decoder_key(model: str, endpoint: str) -> str:
  """`rgb/Mixed_3c`: how a probe is named in logs and checkpoints."""
  return f"{model}/{endpoint}"


class FlowProbeTrainer(keras.Model):
  """Fits `FlowDecoder`s on frozen features to the clip's flow (EPE loss), for `fit`.

  Args:
    extractors: dict model name -> frozen `features.frozen_extractor`.
    input_keys: dict model name -> pipeline feature it reads ("rgb" or "flow").
    decoders: dict (model name, endpoint) -> `FlowDecoder`.
    flow_bound: float. The records' flow bound B (pipeline flow is pixels / B).
    space_stride: int. Spatial cell of the target grid (`targets.flow_target`).
    **kwargs: Standard model arguments.
  """

  def __init__(self, extractors: Dict[str, keras.Model], input_keys: Dict[str, str],
               decoders: Dict[Key, keras.Model], flow_bound: float, space_stride: int,
               **kwargs):
    super().__init__(**kwargs)
    for extractor in extractors.values():
      extractor.trainable = False
    self.extractors = extractors
    self.input_keys = input_keys
    self.decoders = decoders
    self.flow_bound = float(flow_bound)
    self.space_stride = int(space_stride)
    self.trackers = {key: keras.metrics.Mean(name=decoder_key(*key)) for key in decoders}
    self.loss_tracker = keras.metrics.Mean(name="loss")
    # Sum of training flow vectors and their count: the training-set mean flow.
    self.flow_sum = self.add_weight(shape=(2,), initializer="zeros", trainable=False,
                                    dtype="float64", name="flow_sum")
    self.flow_count = self.add_weight(shape=(), initializer="zeros", trainable=False,
                                      dtype="float64", name="flow_count")
    self.built = True

  @property
  def metrics(self):
    return [self.loss_tracker] + list(self.trackers.values())

  @property
  def decoder_variables(self):
    return [v for d in self.decoders.values() for v in d.trainable_variables]

  def mean_flow(self) -> np.ndarray:
    """Mean training flow (pixels), float64 [2]; zeros before any step."""
    count = float(self.flow_count.numpy())
    return self.flow_sum.numpy() / count if count else np.zeros(2)

  def target(self, x):
    return targets.flow_target(x["flow"], self.flow_bound, self.space_stride)

  def features(self, x):
    """{model name: {endpoint: features}} from the frozen extractors."""
    return {name: self.extractors[name](x[key], training=False)
            for name, key in self.input_keys.items()}

  def call(self, x, training=False):
    """{(model, endpoint): predicted flow [B, T', S', S', 2]}."""
    features = self.features(x)
    return {(m, e): d(features[m][e], training=training) for (m, e), d in self.decoders.items()}

  def train_step(self, data):
    x, _, _ = keras.utils.unpack_x_y_sample_weight(data)
    target = self.target(x)
    features = self.features(x)  # Outside the tape: nothing flows back into the models.
    variables = self.decoder_variables
    with tf.GradientTape() as tape:
      losses = {(m, e): metrics.epe_loss(d(features[m][e], training=True), target)
                for (m, e), d in self.decoders.items()}
      total = tf.add_n(list(losses.values()))
    self.optimizer.apply(tape.gradient(total, variables), variables)
    for key, loss in losses.items():
      self.trackers[key].update_state(loss)
    self.loss_tracker.update_state(total)
    flat = tf.reshape(tf.cast(target, tf.float64), [-1, 2])
    self.flow_sum.assign_add(tf.reduce_sum(flat, axis=0))
    self.flow_count.assign_add(tf.cast(tf.shape(flat)[0], tf.float64))
    return {m.name: m.result() for m in self.metrics}

  def checkpoint(self, optimizer, **extra) -> tf.train.Checkpoint:
    """Everything a resumed probe needs: decoders, optimizer, flow sums, and `extra` objects.

    The decoders are listed one by one: a checkpoint does not see layers inside a dict.
    """
    objects = {re.sub(r"\W", "_", decoder_key(*key)): d for key, d in self.decoders.items()}
    return tf.train.Checkpoint(optimizer=optimizer, flow_sum=self.flow_sum,
                               flow_count=self.flow_count, **objects, **extra)
