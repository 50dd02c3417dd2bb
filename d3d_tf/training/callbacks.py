"""Callbacks of a training run: checkpoints, throughput, progress, video-level validation, input
images.

`VideoValidation` is the run's only validation: once per epoch (every `--checkpoint_every`
steps) it runs the whole `--eval_files` set once (K clips per video, logits averaged per
video), adds `val_top1`/`val_top5` to the epoch logs (so TensorBoard and History get them),
writes a confusion-matrix image to TensorBoard and keeps the best student by val top-1.
"""

import json
import os
import sys
import time

import keras
import numpy as np
import tensorflow as tf

from d3d_tf.common import defaults
from d3d_tf.common import progress
from d3d_tf.data import device_resize
from d3d_tf.data import records
from d3d_tf.evaluation import ensemble
from d3d_tf.evaluation import metrics
from d3d_tf.video import optical_flow


class CheckpointEveryEpoch(keras.callbacks.Callback):
  """Saves a `tf.train.CheckpointManager` checkpoint, numbered by step, after every epoch."""

  def __init__(self, manager: tf.train.CheckpointManager, optimizer):
    super().__init__()
    self._manager = manager
    self._optimizer = optimizer

  def on_epoch_end(self, epoch, logs=None):
    self._manager.save(checkpoint_number=int(self._optimizer.iterations.numpy()))


class Throughput(keras.callbacks.Callback):
  """Adds `clips_per_second` (training clips, global) to epoch logs, hence History.

  Keras' TensorBoard callback already writes steps per second (`write_steps_per_second`) and
  the learning rate; clips per second, the unit runs are compared in, is what it lacks.
  """

  def __init__(self, global_batch_size: int):
    super().__init__()
    self._batch = global_batch_size
    self._start = self._steps = 0

  def on_epoch_begin(self, epoch, logs=None):
    self._start, self._steps = time.perf_counter(), 0

  def on_train_batch_end(self, batch, logs=None):
    self._steps += 1

  def on_epoch_end(self, epoch, logs=None):
    if logs is None:
      return
    seconds = max(time.perf_counter() - self._start, 1e-9)
    logs["clips_per_second"] = self._steps * self._batch / seconds


def epoch_line(epoch: int, epochs: int, step: int, total: int, logs) -> str:
  """`epoch 3/10 (step 300/1000): loss 0.1234 - val_top1 0.5000`: one line per epoch."""
  items = " - ".join(f"{k} {float(v):.4g}" for k, v in sorted((logs or {}).items())
                     if _is_number(v))
  return f"epoch {epoch + 1}/{epochs} (step {step}/{total}): {items}".rstrip(": ")


def _is_number(value) -> bool:
  try:
    float(value)
  except (TypeError, ValueError):
    return False
  return True


class TrainProgress(keras.callbacks.Callback):
  """One progress bar over the whole run: steps done of `train_steps`, rate and ETA.

  Keras' own bar restarts every epoch (`--checkpoint_every` steps) and knows nothing of the
  run's end; this one starts at the resumed step (`initial`), so its ETA is the run's. With
  `epoch_lines` (Keras silent, verbose=0) it also writes each epoch's metrics as a line above
  the bar, through the bar so the two never splice.

  Args:
    total_steps: int. `--train_steps`.
    initial_step: int. The step the run resumes from.
    epochs: int. Epochs of the whole run, for the epoch lines.
    stream: Where to write. Defaults to stderr.
    interval: float. Seconds between lines when `stream` is not a terminal. Defaults to 30.
    epoch_lines: bool. Write one line of metrics per epoch. Defaults to False.
    desc: str. The bar's name. Defaults to "training".
  """

  def __init__(self, total_steps: int, initial_step: int = 0, epochs: int = 0, stream=None,
               interval: float = 30.0, epoch_lines: bool = False, desc: str = "training"):
    super().__init__()
    self._total = total_steps
    self._initial = initial_step
    self._epochs = epochs
    self._stream = stream
    self._interval = interval
    self._epoch_lines = epoch_lines
    self._desc = desc
    self.bar = None

  @property
  def step(self) -> int:
    """The run's step: the resumed one plus the batches this bar has counted."""
    return self.bar.count if self.bar is not None else self._initial

  def on_train_begin(self, logs=None):
    self.bar = progress.ProgressBar(total=self._total, unit="steps", desc=self._desc,
                                    stream=self._stream, interval=self._interval,
                                    initial=self._initial)

  def on_train_batch_end(self, batch, logs=None):
    loss = (logs or {}).get("loss")
    self.bar.update(note=f"loss {float(loss):.4f}" if _is_number(loss) else None)

  def on_epoch_end(self, epoch, logs=None):
    if self._epoch_lines and self.bar is not None:
      self.bar.write(epoch_line(epoch, self._epochs, self.step, self._total, logs))

  def on_train_end(self, logs=None):
    if self.bar is not None:
      self.bar.close()


def run_progress(verbose, total_steps: int, step: int, epochs: int, show: bool = True,
                 desc: str = "training"):
  """Keras' verbosity for `fit`, and the `TrainProgress` bar to add (None when not shown).

  A Python caller's `verbose` (not None) is Keras' alone, with no bar. Otherwise Keras is
  silent (verbose=0) and, with `show` (the chief), the run's one report is this bar on stdout:
  its epoch lines through the bar (so none splices into it), a redrawn bar on a terminal and a
  line every 30 s in a log.
  """
  if verbose is not None:
    return verbose, None
  bar = TrainProgress(total_steps, step, epochs, stream=sys.stdout, interval=30.0,
                      epoch_lines=True, desc=desc) if show else None
  return 0, bar


def confusion_image(matrix: np.ndarray, cell: int = 8) -> np.ndarray:
  """Row-normalised confusion matrix (rows: true, cols: predicted) as uint8 [1, H, W, 3]."""
  rows = matrix.sum(axis=1, keepdims=True)
  norm = matrix / np.maximum(rows, 1)
  heat = (np.kron(norm, np.ones((cell, cell))) * 255).astype(np.uint8)
  # White (0) to dark blue (1).
  image = np.stack([255 - heat, 255 - heat, 255 - heat // 3], axis=-1)
  return image[None]


class VideoValidation(keras.callbacks.Callback):
  """Video-level top-1/top-5 over the val set, confusion matrix, and the best student.

  Args:
    dataset: `eval_dataset` output (features with `video_index`).
    input_key: Feature the student reads ("rgb" or "flow").
    num_classes: Number of classes.
    writer: `tf.summary` writer for the confusion image, or None.
    best_dir: Where the best student by val top-1 goes (`student.keras`, `metrics.json`);
      None: not saved (non-chief workers).
  """

  def __init__(self, dataset, input_key, num_classes, writer=None, best_dir=None):
    super().__init__()
    self._dataset = dataset
    self._key = input_key
    self._num_classes = num_classes
    self._writer = writer
    self._best_dir = best_dir
    self._member = None
    self.best_top1 = -1.0
    self.last = {}

  def evaluate(self):
    """Returns (top1, top5, confusion matrix) over videos."""
    if self._member is None or self._member.model is not self.model.student:
      self._member = ensemble.Member("student", self.model.student, self._key)
    out = ensemble.run_views([self._member], self._dataset)
    if not len(out["labels"]):
      raise ValueError("The validation set (--eval_files) yielded no videos.")
    scores, truth = out["logits"][0], out["labels"]
    top1 = metrics.top_k_accuracy(scores, truth, 1)
    top5 = metrics.top_k_accuracy(scores, truth, 5)
    matrix = metrics.confusion_matrix(truth, np.argmax(scores, axis=1), self._num_classes)
    return top1, top5, matrix

  def on_epoch_end(self, epoch, logs=None):
    top1, top5, matrix = self.evaluate()
    step = int(self.model.optimizer.iterations.numpy())
    self.last = {"step": step, "val_top1": top1, "val_top5": top5}
    if logs is not None:
      logs.update(val_top1=top1, val_top5=top5)
    if self._writer is not None:
      with self._writer.as_default():
        tf.summary.image("confusion_matrix", confusion_image(matrix), step=step)
        tf.summary.scalar("video_top1", top1, step=step)
        tf.summary.scalar("video_top5", top5, step=step)
      self._writer.flush()
    if top1 > self.best_top1:
      self.best_top1 = top1
      if self._best_dir:
        os.makedirs(self._best_dir, exist_ok=True)
        self.model.student.save(os.path.join(self._best_dir, defaults.MODEL_FILE))
        with open(os.path.join(self._best_dir, "metrics.json"), "w") as f:
          json.dump(self.last, f, indent=2)


def log_input_clips(writer, features, step: int = 0, max_clips: int = 3, max_frames: int = 4,
                    flow_bound: float = records.DEFAULT_FLOW_BOUND):
  """Writes a few training clips: RGB frames, and flow as colour-wheel pictures (de-scaled).

  Takes the model's float inputs or the pipeline's uint8 clips (`uint8_clips`) or crop
  buffers (`resize_on_device`) alike.
  """
  def model_input(key):
    clips = {key: tf.convert_to_tensor(features[key][:max_clips, :max_frames])}
    for table in device_resize.TABLES:  # uint8 crops resized on the device (resize_on_device)
      if table in features:
        clips[table] = features[table][:max_clips]
    return np.asarray(device_resize.model_input(clips, key))

  with writer.as_default():
    if "rgb" in features:
      rgb = model_input("rgb")
      for i, clip in enumerate(rgb):
        tf.summary.image(f"input/rgb_clip{i}", (clip + 1.0) / 2.0, step=step,
                         max_outputs=max_frames)
    if "flow" in features:
      flow = model_input("flow") * flow_bound
      for i, clip in enumerate(flow):
        tf.summary.image(f"input/flow_clip{i}", optical_flow.flow_to_color(clip), step=step,
                         max_outputs=max_frames)
  writer.flush()
