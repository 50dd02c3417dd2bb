"""Multi-view inference per model and late fusion of models (the paper's two-stream rows).

Fusion rule: per model, the logits of a video's views are averaged (the multi-view protocol);
the ensemble score of a video is then the weighted mean of the models' SOFTMAX probabilities,
`sum_m w_m softmax(mean_view_logits_m) / sum_m w_m`. Probabilities put models on one scale
(an RGB and a flow network have logits of different magnitude), which is how two-stream and
I3D/S3D papers fuse streams; the weights (`--fusion_weights`) then mean what they say.
"""

import dataclasses
import os
import time
from typing import Callable, Dict, List, Optional, Sequence

import keras
import numpy as np
import tensorflow as tf

from d3d_tf.evaluation import metrics
from d3d_tf.inference import runtimes
from d3d_tf.models import clip_geometry as geometry_lib
from d3d_tf.models import model_files

RGB = "rgb"
FLOW = "flow"


@dataclasses.dataclass
class Member:
  """One model of an ensemble: its file, the Keras model (or `PortableClassifier`), its input
  modality and weight."""
  path: str
  model: keras.Model
  modality: str
  weight: float = 1.0
  seconds: float = 0.0  # Inference time spent in the model.
  views: int = 0  # Views (clips) it classified.
  _predict: Optional[Callable] = dataclasses.field(default=None, repr=False, compare=False)

  @property
  def name(self) -> str:
    """`rgb/student.keras` rather than `student.keras`: model dirs name their models."""
    parent = os.path.basename(os.path.dirname(os.path.abspath(self.path)))
    return os.path.join(parent, os.path.basename(self.path)) if parent else self.path

  @property
  def clips_per_second(self) -> float:
    return self.views / self.seconds if self.seconds > 0 else float("nan")

  def predict_fn(self):
    """The model's float32 logits as one traced function, kept across `run_views` calls."""
    if self._predict is None and isinstance(self.model, PortableClassifier):
      self._predict = self.model.predict_fn()
    if self._predict is None:
      self._predict = _predict_fn(self.model, geometry_lib.CHANNELS_BY_MODALITY[self.modality])
    return self._predict


def modality_of(model: keras.Model) -> str:
  """"rgb" for 3 input channels, "flow" for 2; anything else is an error."""
  channels = model.input_shape[-1]
  if channels not in geometry_lib.MODALITY_BY_CHANNELS:
    raise ValueError(f"Cannot tell a model's input from {channels} input channels; expected "
                     "3 (RGB) or 2 (optical flow).")
  return geometry_lib.MODALITY_BY_CHANNELS[channels]


class PortableClassifier:
  """An ONNX or LiteRT export (`inference.runtimes`) with what evaluation reads of a Keras
  classifier: its clip geometry (fixed: the file takes one clip shape), input and output
  shapes, and a logits function of the records pipeline's [-1, 1] clips (rounded to the uint8
  the file takes), so `evaluate` measures exactly the file that is shipped."""

  def __init__(self, portable):
    self.portable = portable
    stored = dict(portable.geometry, labels=list(portable.labels), fixed_size=True)
    self.clip_geometry = geometry_lib.ClipGeometry.from_dict(stored)
    self.input_shape = (None,) + tuple(portable.clip_shape)
    self.output_shape = (None, len(portable.labels))

  def predict_fn(self):
    return lambda x: tf.constant(self.portable.logits_from_unit(np.asarray(x)))


def load_members(paths: Sequence[str], weights: Optional[Sequence[float]] = None) -> List[Member]:
  """Loads `.keras` classifiers, or `.onnx` / `.tflite` exports; weights default to 1 each."""
  if weights is None or len(weights) == 0:
    weights = [1.0] * len(paths)
  if len(weights) != len(paths):
    raise ValueError(f"Expected one fusion weight per model: {len(paths)} models, "
                     f"{len(weights)} weights.")
  members = []
  for path, weight in zip(paths, weights):
    if runtimes.is_portable(path):
      model = PortableClassifier(runtimes.load(path))
    else:
      model = model_files.load_keras(path, "models")
    members.append(Member(path, model, modality_of(model), float(weight)))
  num_classes = {int(m.model.output_shape[-1]) for m in members}
  if len(num_classes) != 1:
    raise ValueError(f"Ensemble members disagree on the number of classes: {num_classes}.")
  return members


def _predict_fn(model: keras.Model, channels: int):
  spec = tf.TensorSpec([None, None, None, None, channels], tf.float32)

  @tf.function(input_signature=[spec])
  def predict(x):
    return tf.cast(model(x, training=False), tf.float32)

  return predict


def run_views(members: Sequence[Member], dataset: tf.data.Dataset,
              bar=None) -> Dict[str, np.ndarray]:
  """Averages each model's logits over the views of each video of an eval dataset.

  Args:
    members: Models; their modalities must be among the dataset's features.
    dataset: `datasets.eval_dataset`-style `(features, label)` batches with `video_index`.

  Returns:
    dict: `logits` float32 [M, N, C] (per member), `labels` int [N], `video_ids` [N] (str),
    `num_views` int [N]. Member `seconds`/`views` are updated.
    bar: A `progress.ProgressBar` counting videos (a video counts at its first view), or None.
  """
  fns = [m.predict_fn() for m in members]
  sums: List[Dict[int, np.ndarray]] = [{} for _ in members]
  counts: Dict[int, int] = {}
  labels: Dict[int, int] = {}
  ids: Dict[int, str] = {}
  for features, label in dataset:
    index = features["video_index"].numpy()
    for member, fn, acc in zip(members, fns, sums):
      start = time.perf_counter()
      logits = fn(features[member.modality]).numpy()
      member.seconds += time.perf_counter() - start
      member.views += len(index)
      for i, row in zip(index, logits):
        acc[int(i)] = acc.get(int(i), 0.0) + row
    for i, y, v in zip(index, label.numpy(), features["video_id"].numpy()):
      counts[int(i)] = counts.get(int(i), 0) + 1
      labels[int(i)] = int(y)
      ids[int(i)] = v.decode("utf-8")
    if bar is not None:
      bar.update(len(counts) - bar.count)
  order = sorted(counts)
  logits = np.stack([np.stack([acc[i] / counts[i] for i in order]) for acc in sums]) \
      if order else np.zeros([len(members), 0, members[0].model.output_shape[-1]], np.float32)
  return dict(logits=logits.astype(np.float32), labels=np.array([labels[i] for i in order]),
              video_ids=np.array([ids[i] for i in order]),
              num_views=np.array([counts[i] for i in order]))


softmax = metrics.softmax


def fuse(logits: np.ndarray, weights: Sequence[float]) -> np.ndarray:
  """Late fusion: weighted mean of per-model softmax probabilities, [M, N, C] -> [N, C]."""
  weights = np.asarray(weights, np.float64)
  if weights.shape != (logits.shape[0],) or np.any(weights < 0) or weights.sum() <= 0:
    raise ValueError(f"Need {logits.shape[0]} non-negative fusion weights with a positive "
                     f"sum. Received: {weights.tolist()}")
  probs = softmax(logits.astype(np.float64))
  return (np.tensordot(weights, probs, axes=1) / weights.sum()).astype(np.float32)
