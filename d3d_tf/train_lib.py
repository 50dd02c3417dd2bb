"""The training run behind `python -m d3d_tf.train`: importable, one function, one config.

Kept apart from the absl CLI so tests and notebooks can call `train(TrainConfig(...))`. A run
validates everything (files, label map, teacher) before building a model, checkpoints every
`checkpoint_every` steps (one Keras epoch) and resumes from its last checkpoint when relaunched.
"""

import dataclasses
import json
import os
import platform
import shutil
import sys
import time
from typing import Optional

import keras
import numpy as np
import tensorflow as tf

from d3d_tf import flagfiles
from d3d_tf.data import datasets
from d3d_tf.data.label_map import read_label_map
from d3d_tf.distill import D3DDistiller
from d3d_tf.models import ENDPOINTS, S3DGBackbone, S3DGClassifier
from d3d_tf.training import callbacks as cbs
from d3d_tf.training import optimizers, strategies, teachers as teachers_lib
from d3d_tf.weights import init_from

STREAMS = ("rgb", "flow", "d3d")
PRECISIONS = ("none", "mixed_float16", "mixed_bfloat16")


@dataclasses.dataclass
class TrainConfig:
  """One training run; field names and meanings are those of `d3d_tf.train`'s flags."""
  stream: str
  train_files: str
  model_dir: str
  eval_files: str = ""
  label_map: str = ""
  train_steps: int = 1000
  checkpoint_every: int = 100
  keep_checkpoints: int = 3
  teacher: str = ""
  init_from: str = ""
  reset_head: bool = False
  freeze_until: str = ""
  strategy: str = "default"
  tpu: str = ""
  mixed_precision: str = "none"
  jit_compile: bool = False
  optimizer: str = "sgd"
  learning_rate: float = 0.1
  momentum: float = 0.9
  weight_decay: float = 0.0
  lr_schedule: str = "cosine"
  warmup_steps: int = 0
  lr_boundaries: tuple = ()
  lr_decay: float = 0.1
  clip_norm: float = 0.0
  label_smoothing: float = 0.0
  label_weight: float = 1.0
  distill_weight: float = 1.0
  distill_loss: str = "mse"
  temperature: float = 1.0
  batch_size: int = 8
  num_frames: int = 16
  stride: int = 1
  crop_size: int = 112
  depth_multiplier: float = 1.0
  final_endpoint: str = "Mixed_5c"
  dropout_keep_prob: float = 0.8
  bn_momentum: float = 0.999
  min_area: float = 0.08
  flip: bool = True
  seed: Optional[int] = None
  deterministic: bool = False
  eval_clips: int = 4
  shuffle_buffer: int = 256
  verbose: Optional[int] = None

  def to_flagfile(self) -> str:
    """The config as flagfile lines (`--name=value`), read back by `d3d_tf.train`."""
    return flagfiles.to_flagfile(
        (field.name, getattr(self, field.name)) for field in dataclasses.fields(self))


def student_input(config: TrainConfig) -> str:
  return "flow" if config.stream == "flow" else "rgb"


def validate(config: TrainConfig):
  """Checks values that need no files; raises ValueError naming the flag."""
  def check(ok, message):
    if not ok:
      raise ValueError(message)
  check(config.stream in STREAMS, f"--stream must be one of {STREAMS}; got {config.stream!r}.")
  check(config.stream != "d3d" or config.teacher,
        "--stream=d3d needs --teacher (a flow model: .keras file, model dir or SavedModel).")
  check(config.mixed_precision in PRECISIONS,
        f"--mixed_precision must be one of {PRECISIONS}; got {config.mixed_precision!r}.")
  check(config.train_steps > 0, f"--train_steps must be > 0; got {config.train_steps}.")
  check(config.checkpoint_every > 0,
        f"--checkpoint_every must be > 0; got {config.checkpoint_every}.")
  check(config.train_steps % config.checkpoint_every == 0,
        f"--train_steps ({config.train_steps}) must be a multiple of --checkpoint_every "
        f"({config.checkpoint_every}).")
  check(config.final_endpoint in ENDPOINTS,
        f"--final_endpoint must be one of {', '.join(ENDPOINTS)}; got {config.final_endpoint!r}.")
  check(not config.freeze_until or config.freeze_until in ENDPOINTS,
        f"--freeze_until must be one of {', '.join(ENDPOINTS)}; got {config.freeze_until!r}.")
  check(config.init_from or not (config.reset_head or config.freeze_until),
        "--reset_head and --freeze_until need --init_from.")
  check(config.batch_size > 0, f"--batch_size must be > 0; got {config.batch_size}.")
  check(list(config.lr_boundaries) == sorted(config.lr_boundaries),
        f"--lr_boundaries must increase; got {list(config.lr_boundaries)}.")


def check_train_files(pattern: str):
  """Raises FileNotFoundError when nothing matches, ValueError when the files hold no record."""
  files = sorted(tf.io.gfile.glob(pattern))
  if not files:
    raise FileNotFoundError(f"No files match --train_files={pattern!r}.")
  if not any(tf.io.gfile.stat(f).length for f in files) or not any(
      True for _ in tf.data.TFRecordDataset(files).take(1)):
    raise ValueError(f"--train_files={pattern!r} matches {len(files)} file(s) but they hold no "
                     "records (empty dataset).")
  return files


def _read_labels(config: TrainConfig, files):
  path = config.label_map or os.path.join(os.path.dirname(files[0]), "label_map.txt")
  return path, read_label_map(path)


def _environment(strategy) -> dict:
  return {
      "tensorflow": tf.__version__, "keras": keras.__version__,
      "python": platform.python_version(), "platform": platform.platform(),
      "devices": [d.name for d in tf.config.list_logical_devices()],
      "strategy": type(strategy).__name__, "replicas": strategy.num_replicas_in_sync,
      "argv": sys.argv,
  }


def _student(config: TrainConfig, num_classes: int, init_source=None):
  """The student: from scratch, or with `init_source`'s architecture and weights."""
  dtype = None if config.mixed_precision == "none" else config.mixed_precision
  channels = 2 if student_input(config) == "flow" else 3
  if init_source is not None:
    student, notes = init_from.build_from_source(
        init_source, channels, num_classes, reset_head=config.reset_head,
        freeze_until=config.freeze_until, bn_momentum=config.bn_momentum,
        dropout_keep_prob=config.dropout_keep_prob, dtype=dtype, name=f"s3dg_{config.stream}")
    print(f"Initialised from {config.init_from}: {'; '.join(notes)}.", flush=True)
    return student
  backbone = S3DGBackbone(input_channels=channels, depth_multiplier=config.depth_multiplier,
                          final_endpoint=config.final_endpoint, bn_momentum=config.bn_momentum,
                          dtype=dtype)
  return S3DGClassifier(backbone, num_classes, dropout_keep_prob=config.dropout_keep_prob,
                        dtype=dtype, name=f"s3dg_{config.stream}")


def _build(config: TrainConfig, num_classes: int, teacher_models, teacher_keys,
           init_source=None):
  """Student, distiller and optimizer (call under the strategy scope)."""
  student = _student(config, num_classes, init_source)
  teacher = None
  if teacher_models:
    teacher = teacher_models if len(teacher_models) > 1 else teacher_models[0]
  distiller = D3DDistiller(
      student, teacher, label_weight=config.label_weight, distill_weight=config.distill_weight,
      distill_loss=config.distill_loss, temperature=config.temperature,
      label_smoothing=config.label_smoothing, student_input=student_input(config),
      teacher_input=teacher_keys if len(teacher_keys) > 1 else (teacher_keys or ["flow"])[0])
  schedule = optimizers.make_schedule(
      config.lr_schedule, config.learning_rate, config.train_steps, config.warmup_steps,
      config.lr_boundaries, config.lr_decay)
  optimizer = optimizers.make_optimizer(
      config.optimizer, schedule, config.momentum, config.weight_decay, config.clip_norm,
      loss_scale=config.mixed_precision == "mixed_float16")
  optimizer.build(student.trainable_variables)  # Variables exist before a restore.
  distiller.compile(optimizer=optimizer, jit_compile=config.jit_compile)
  return student, distiller, optimizer


def train(config: TrainConfig, flags_text: Optional[str] = None) -> dict:
  """Runs (or resumes) one training run; returns the final metrics (also in final_metrics.json).

  Args:
    config: The run.
    flags_text: Flagfile text saved as `model_dir/flags.txt`; default `config.to_flagfile()`.

  Raises:
    ValueError, FileNotFoundError: Bad flags, files, label map or teacher; the message names
      the problem.
  """
  validate(config)
  # First: a multi-worker strategy configures collective ops, which must precede any TF op.
  strategy = strategies.make_strategy(config.strategy, config.tpu)
  files = check_train_files(config.train_files)
  label_map_path, labels = _read_labels(config, files)
  if config.eval_files and not tf.io.gfile.glob(config.eval_files):
    raise FileNotFoundError(f"No files match --eval_files={config.eval_files!r}.")
  chief = strategies.is_chief(strategy)
  teacher_paths = [p.strip() for p in config.teacher.split(",") if p.strip()]
  if config.stream != "d3d":
    teacher_paths = []

  # Datasets before the global seed: their seeds are explicit, and tf.data's shuffle fails on
  # a tensor seed once a global seed of 0 is set.
  keys = {"rgb", "flow"} if config.stream == "d3d" else {student_input(config)}

  def make_train_dataset():
    return datasets.train_dataset(
        files, batch_size=config.batch_size, num_frames=config.num_frames, stride=config.stride,
        crop_size=config.crop_size, with_rgb="rgb" in keys, with_flow="flow" in keys,
        shuffle_buffer=config.shuffle_buffer, seed=config.seed, min_area=config.min_area,
        flip=config.flip, deterministic=config.deterministic)

  train_ds = make_train_dataset()
  # Pictures of the input come from their own dataset: a second iterator of `train_ds` would
  # reshuffle, and a resumed run (which logs none) would then see other batches.
  sample_ds = make_train_dataset()

  eval_ds = None
  if config.eval_files:
    eval_ds = datasets.eval_dataset(
        config.eval_files, num_clips=config.eval_clips, num_frames=config.num_frames,
        stride=config.stride, crop_size=config.crop_size,
        with_rgb=student_input(config) == "rgb", with_flow=student_input(config) == "flow",
        batch_size=config.batch_size)
  if config.seed is not None:
    keras.utils.set_random_seed(config.seed)
  if config.deterministic:
    tf.config.experimental.enable_op_determinism()

  # Read only, so outside the strategy scope: its variables need no replicas.
  init_source = init_from.load_source(config.init_from) if config.init_from else None
  with strategy.scope():
    teacher_models, teacher_keys = [], []
    if teacher_paths:
      teacher_models, teacher_keys = teachers_lib.load_teachers(
          teacher_paths, len(labels), student_input(config))
    student, distiller, optimizer = _build(config, len(labels), teacher_models, teacher_keys,
                                           init_source)

  os.makedirs(config.model_dir, exist_ok=True)
  ckpt_dir = os.path.join(config.model_dir, "checkpoints")
  if not chief:
    ckpt_dir = os.path.join(ckpt_dir, f"worker{strategy.cluster_resolver.task_id}")
  # Dropout's seed-generator state too, so a resumed run draws the same masks.
  rng = [layer.seed_generator.state for layer in student._flatten_layers()
         if getattr(layer, "seed_generator", None) is not None]
  checkpoint = tf.train.Checkpoint(model=student, optimizer=optimizer, rng=rng)
  manager = tf.train.CheckpointManager(checkpoint, ckpt_dir, config.keep_checkpoints)
  if manager.latest_checkpoint:
    checkpoint.restore(manager.latest_checkpoint).assert_existing_objects_matched()
  step = int(optimizer.iterations.numpy())
  initial_epoch = step // config.checkpoint_every
  epochs = config.train_steps // config.checkpoint_every

  if chief:
    with open(os.path.join(config.model_dir, "flags.txt"), "w") as f:
      f.write(flags_text if flags_text is not None else config.to_flagfile())
    copy = os.path.join(config.model_dir, "label_map.txt")
    if os.path.abspath(label_map_path) != os.path.abspath(copy):
      shutil.copyfile(label_map_path, copy)
    with open(os.path.join(config.model_dir, "environment.json"), "w") as f:
      json.dump(_environment(strategy), f, indent=2)

  if config.deterministic and step:
    train_ds = train_ds.skip(step)  # Same batches as an uninterrupted run.

  log_dir = os.path.join(config.model_dir, "logs")
  callbacks = [keras.callbacks.TerminateOnNaN(), cbs.Throughput(config.batch_size, optimizer)]
  validation = None
  writer = tf.summary.create_file_writer(os.path.join(log_dir, "validation")) if chief else None
  if config.eval_files:
    validation = cbs.VideoValidation(
        eval_ds, student_input(config), len(labels), writer,
        os.path.join(config.model_dir, "best") if chief else None)
    callbacks.append(validation)
  callbacks.append(cbs.CheckpointEveryEpoch(manager, optimizer))
  if chief:
    callbacks.append(keras.callbacks.TensorBoard(
        log_dir, update_freq=min(50, config.checkpoint_every), write_graph=False))
    if step == 0:
      sample = next(iter(sample_ds))[0]
      cbs.log_input_clips(tf.summary.create_file_writer(os.path.join(log_dir, "train")), sample)
    print(f"Model dir: {config.model_dir} (step {step} of {config.train_steps})\n"
          f"TensorBoard: tensorboard --logdir {log_dir}", flush=True)

  verbose = config.verbose if config.verbose is not None else (1 if sys.stdout.isatty() else 2)
  start = time.perf_counter()
  history = distiller.fit(
      train_ds, epochs=epochs, initial_epoch=initial_epoch,
      steps_per_epoch=config.checkpoint_every, callbacks=callbacks, verbose=verbose,
      shuffle=False)  # The dataset shuffles; Keras would warn that it cannot.
  seconds = time.perf_counter() - start

  final = {"step": int(optimizer.iterations.numpy()), "train_seconds": seconds,
           "val_top1": None, "val_top5": None}
  for name, values in history.history.items():
    if values and not name.startswith("val_"):
      final[name] = float(values[-1])
  if validation is not None:
    if not validation.last:  # Nothing left to train: validate the restored model.
      validation.set_model(distiller)
      validation.on_epoch_end(epochs - 1, None)
    final.update(val_top1=validation.last["val_top1"], val_top5=validation.last["val_top5"])
  if manager.latest_checkpoint is None or not manager.latest_checkpoint.endswith(
      f"-{final['step']}"):
    manager.save(checkpoint_number=final["step"])
  if chief:
    student.save(os.path.join(config.model_dir, "student.keras"))
    with open(os.path.join(config.model_dir, "final_metrics.json"), "w") as f:
      json.dump(final, f, indent=2)
  if not np.isfinite(final.get("loss", 0.0)):
    raise FloatingPointError(f"Training diverged: final loss {final['loss']}.")
  return final
