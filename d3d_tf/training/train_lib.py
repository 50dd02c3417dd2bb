"""The training run behind `python -m d3d_tf.train`: importable, one config, named steps.

Kept apart from the absl CLI so tests and notebooks can call `train(TrainConfig(...))`. A run
validates everything (files, label map, teacher) before building a model, checkpoints every
`checkpoint_every` steps (one Keras epoch), resumes from its last checkpoint when relaunched and
is left as it was once finished. Called from Python it sets no process-wide state (global
seeds, op determinism) unless asked to, as the CLI does (`process_wide=True`).
"""

import json
import os
import platform
import shutil
import sys
import time
from typing import Optional

import keras
import tensorflow as tf

from d3d_tf.common import defaults
from d3d_tf.training import train_config
from d3d_tf.data import datasets, records
from d3d_tf.data.label_map import read_label_map
from d3d_tf.distill import D3DDistiller
from d3d_tf.models import S3DGBackbone, S3DGClassifier, flow_settings, videoswin_classifier
from d3d_tf.training import callbacks as cbs
from d3d_tf.training import optimizers, run_geometry, strategies, teachers as teachers_lib
from d3d_tf.weights import init_from

# Re-exported: callers build and check configs through this module.
TrainConfig = train_config.TrainConfig
validate = train_config.validate
STREAMS, PRECISIONS = train_config.STREAMS, train_config.PRECISIONS


def student_input(config: TrainConfig) -> str:
  return "flow" if config.stream == "flow" else "rgb"


def check_train_files(pattern: str, flag: str = "train_files"):
  """The files of a glob (or comma-separated globs): raises FileNotFoundError when nothing
  matches, ValueError when the files hold no record; `flag` names it."""
  files = records.glob_files(pattern)
  if not files:
    raise FileNotFoundError(f"No files match --{flag}={pattern!r}.")
  if not any(tf.io.gfile.stat(f).length for f in files) or not any(
      True for _ in tf.data.TFRecordDataset(files).take(1)):
    raise ValueError(f"--{flag}={pattern!r} matches {len(files)} file(s) but they hold no "
                     "records (empty dataset).")
  return files


def _read_labels(config: TrainConfig, files):
  path = config.label_map or os.path.join(os.path.dirname(files[0]), defaults.LABEL_MAP_FILE)
  return path, read_label_map(path)


def _environment(strategy) -> dict:
  return {
      "tensorflow": tf.__version__, "keras": keras.__version__,
      "python": platform.python_version(), "platform": platform.platform(),
      "devices": [d.name for d in tf.config.list_logical_devices()],
      "strategy": type(strategy).__name__, "replicas": strategy.num_replicas_in_sync,
      "argv": sys.argv,
  }


def _student(config: TrainConfig, geometry, init_source=None):
  """The student, storing `geometry`: from scratch, or with `init_source`'s architecture and
  weights. Returns (student, notes on what the start kept; empty from scratch)."""
  dtype = None if config.mixed_precision == "none" else config.mixed_precision
  num_classes = len(geometry.labels)
  if init_source is not None:
    student, notes = init_from.build_from_source(
        init_source, geometry.channels, num_classes, reset_head=config.reset_head,
        freeze_until=config.freeze_until, bn_momentum=config.bn_momentum,
        sync_batch_norm=config.sync_batch_norm, dropout_keep_prob=config.dropout_keep_prob,
        dtype=dtype, name=f"s3dg_{config.stream}")
    student.clip_geometry = geometry
    return student, notes
  if config.student_backbone == "videoswin":
    return _videoswin_student(config, geometry), []
  backbone = S3DGBackbone(input_channels=geometry.channels,
                          depth_multiplier=config.depth_multiplier,
                          final_endpoint=config.final_endpoint, bn_momentum=config.bn_momentum,
                          sync_batch_norm=config.sync_batch_norm, dtype=dtype)
  return S3DGClassifier(backbone, num_classes, dropout_keep_prob=config.dropout_keep_prob,
                        clip_geometry=geometry, dtype=dtype, name=f"s3dg_{config.stream}"), []


def _videoswin_student(config: TrainConfig, geometry):
  """A `VideoSwinClassifier` for the run's clips, sized by the --videoswin_* flags."""
  backbone = videoswin_classifier.videoswin_backbone(
      geometry.num_frames, geometry.crop_size, embed_dim=config.videoswin_embed_dim,
      depths=config.videoswin_depths, num_heads=config.videoswin_num_heads,
      window_size=config.videoswin_window_size, patch_size=config.videoswin_patch_size,
      drop_path_rate=config.videoswin_drop_path_rate)
  return videoswin_classifier.VideoSwinClassifier(
      backbone, len(geometry.labels), dropout_keep_prob=config.dropout_keep_prob,
      clip_geometry=geometry, name=f"videoswin_{config.stream}")


def _build(config: TrainConfig, geometry, teacher_models, teacher_keys, init_source=None):
  """Student, distiller, optimizer and the init notes (call under the strategy scope)."""
  student, notes = _student(config, geometry, init_source)
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
  return student, distiller, optimizer, notes


def _op_determinism_enabled() -> bool:
  """Whether TF's op determinism is on (no public API asks; if the private one goes, yes)."""
  try:
    from tensorflow.python.framework import config  # pylint: disable=g-import-not-at-top
    return config.is_op_determinism_enabled()
  except (ImportError, AttributeError):
    return True


def _resize_on_device(config: TrainConfig) -> bool:
  """--resize_on_device: auto is on when an accelerator trains, unless --uint8_clips or
  --jit_compile (which would compile the step once per crop size)."""
  if config.resize_on_device != "auto":
    return config.resize_on_device == "on"
  accelerators = tf.config.list_logical_devices("GPU") + tf.config.list_logical_devices("TPU")
  return bool(accelerators) and not (config.uint8_clips or config.jit_compile)


def _datasets(config: TrainConfig, files, unlabelled_files=None):
  """(train, input-picture sample, validation or None) datasets of the run.

  Built before the global seed (`process_wide`): their seeds are explicit, and tf.data's
  shuffle fails on a tensor seed once a global seed of 0 is set.
  """
  keys = {"rgb", "flow"} if config.stream == "d3d" else {student_input(config)}

  def make_train_dataset():
    return datasets.train_dataset(
        files, batch_size=config.batch_size, num_frames=config.num_frames, stride=config.stride,
        crop_size=config.crop_size, with_rgb="rgb" in keys, with_flow="flow" in keys,
        shuffle_buffer=config.shuffle_buffer, seed=config.seed, min_area=config.min_area,
        flip=config.flip, deterministic=config.deterministic,
        unlabelled_pattern=unlabelled_files, uint8_clips=config.uint8_clips,
        resize_on_device=_resize_on_device(config))

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
  return train_ds, sample_ds, eval_ds


def _load_teachers(config: TrainConfig, teacher_paths, labels):
  """The checked teachers and their input keys (call under the strategy scope)."""
  if not teacher_paths:
    return [], []
  teacher_models, teacher_keys = teachers_lib.load_teachers(
      teacher_paths, len(labels), student_input(config),
      same_modality_ok=config.same_modality_teacher)
  flows = {}
  if "flow" in teacher_keys:
    flows["--train_files"] = flow_settings.records_settings("train_files", config.train_files)
    if config.unlabelled_train_files:
      # The teacher reads both sets' flow: one method, bound and quantisation.
      flows["--unlabelled_train_files"] = other = flow_settings.records_settings(
          "unlabelled_train_files", config.unlabelled_train_files)
      if flows["--train_files"].differences(other):
        raise ValueError(f"--unlabelled_train_files hold {other.describe()}, --train_files "
                         f"{flows['--train_files'].describe()}; one is needed (re-convert).")
  clip = dict(num_frames=config.num_frames, stride=config.stride, crop_size=config.crop_size)
  for note in teachers_lib.check_geometry(teacher_paths, teacher_models, clip, labels, flows):
    print(f"note: {note}", flush=True)
  return teacher_models, teacher_keys


def _restore(config: TrainConfig, strategy, chief: bool, student, optimizer, init_notes):
  """The run's checkpoint manager, restored from its latest checkpoint; and the step reached."""
  ckpt_dir = os.path.join(config.model_dir, "checkpoints")
  if not chief:
    ckpt_dir = os.path.join(ckpt_dir, f"worker{strategy.cluster_resolver.task_id}")
  # Dropout's seed-generator state too, so a resumed run draws the same masks.
  # keras-cv's DropPath (VideoSwin) keeps its generator as `seed`.
  rng = [generator.state for layer in student._flatten_layers()
         for generator in (getattr(layer, "seed_generator", None), getattr(layer, "seed", None))
         if isinstance(generator, keras.random.SeedGenerator)]
  checkpoint = tf.train.Checkpoint(model=student, optimizer=optimizer, rng=rng)
  manager = tf.train.CheckpointManager(checkpoint, ckpt_dir, config.keep_checkpoints)
  if manager.latest_checkpoint:
    checkpoint.restore(manager.latest_checkpoint).assert_existing_objects_matched()
  step = int(optimizer.iterations.numpy())
  if manager.latest_checkpoint and config.init_from:
    print(f"Resumed from {manager.latest_checkpoint} (step {step}): its weights replace those "
          f"of --init_from.", flush=True)
  elif config.init_from:
    print(f"Initialised from {config.init_from}: {'; '.join(init_notes)}.", flush=True)
  return manager, step


def _write_run_files(config: TrainConfig, flags_text, label_map_path, strategy):
  """flags.txt, a copy of the label map and environment.json in the model dir (chief only)."""
  with open(os.path.join(config.model_dir, defaults.FLAGS_FILE), "w") as f:
    f.write(flags_text if flags_text is not None else config.to_flagfile())
  copy = os.path.join(config.model_dir, defaults.LABEL_MAP_FILE)
  if os.path.abspath(label_map_path) != os.path.abspath(copy):
    shutil.copyfile(label_map_path, copy)
  with open(os.path.join(config.model_dir, "environment.json"), "w") as f:
    json.dump(_environment(strategy), f, indent=2)


def _callbacks(config: TrainConfig, chief: bool, step: int, labels, optimizer, manager,
               eval_ds, sample_ds):
  """The run's callbacks and its `VideoValidation` (None without --eval_files)."""
  log_dir = os.path.join(config.model_dir, "logs")
  callbacks = [keras.callbacks.TerminateOnNaN(), cbs.Throughput(config.batch_size)]
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
        log_dir, update_freq=min(50, config.checkpoint_every), write_graph=False,
        write_steps_per_second=True))
    if step == 0:
      sample = next(iter(sample_ds))[0]
      cbs.log_input_clips(tf.summary.create_file_writer(os.path.join(log_dir, "train")), sample)
    print(f"Model dir: {config.model_dir} (step {step} of {config.train_steps})\n"
          f"TensorBoard: tensorboard --logdir {log_dir}", flush=True)
  return callbacks, validation


def _progress(config: TrainConfig, chief: bool, step: int, epochs: int):
  """Keras' verbosity and the whole-run bar: `callbacks.run_progress`, shown on the chief."""
  return cbs.run_progress(config.verbose, config.train_steps, step, epochs, show=chief)


def _final_metrics(history, seconds: float, optimizer, validation, distiller,
                   epochs: int) -> dict:
  """The last epoch's training metrics, the step, the time and the video-level validation."""
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
  return final


def train(config: TrainConfig, flags_text: Optional[str] = None, *,
          process_wide: bool = False, check_model_dir: bool = True) -> dict:
  """Runs (or resumes) one training run; returns the final metrics (also in final_metrics.json).

  A run whose final_metrics.json already reached `config.train_steps` is left as it was: its
  metrics are returned and nothing in `model_dir` is rewritten. A relaunch whose settings
  differ from the model dir's flags.txt in one that matters raises `ChangedSettings` (a
  ValueError), unless `config.overwrite`, which starts the model dir afresh.

  Args:
    config: The run.
    flags_text: Flagfile text saved as `model_dir/flags.txt`; default `config.to_flagfile()`.
    process_wide: What `d3d_tf.train` passes: once the datasets exist (their seeds are
      explicit), seed Python, NumPy, TensorFlow and Keras globally with `config.seed`
      (`keras.utils.set_random_seed`) and, with `config.deterministic`, call
      `tf.config.experimental.enable_op_determinism()`; both outlast the call. False (the
      default) leaves the process alone: `config.seed` then seeds the data only (weights draw
      from the caller's global RNG: seed it for reproducible weights), and
      `config.deterministic` needs the caller to have enabled op determinism.
    check_model_dir: Apply `train_config.prepare_model_dir` (--overwrite, the relaunch check).

  Raises:
    ValueError, FileNotFoundError: Bad flags, files, label map or teacher; the message names
      the problem.
    FloatingPointError: The final loss is not finite (a finished run's too).
  """
  validate(config)
  if check_model_dir:  # `d3d_tf.train` did it before importing TensorFlow.
    for note in train_config.prepare_model_dir(config):
      print(note, flush=True)
  finished = train_config.finished_run(config)
  if finished is not None:
    return finished
  if config.deterministic and not process_wide and not _op_determinism_enabled():
    raise ValueError("--deterministic needs TensorFlow's op determinism: call "
                     "tf.config.experimental.enable_op_determinism() first, or pass "
                     "process_wide=True.")
  # First: a multi-worker strategy configures collective ops, which must precede any TF op.
  strategy = strategies.make_strategy(config.strategy, config.tpu)
  files = check_train_files(config.train_files)
  unlabelled_files = None
  if config.unlabelled_train_files:
    unlabelled_files = check_train_files(config.unlabelled_train_files, "unlabelled_train_files")
  label_map_path, labels = _read_labels(config, files)
  if config.eval_files and not tf.io.gfile.glob(config.eval_files):
    raise FileNotFoundError(f"No files match --eval_files={config.eval_files!r}.")
  chief = strategies.is_chief(strategy)
  teacher_paths = [p.strip() for p in config.teacher.split(",") if p.strip()]
  if config.stream != "d3d":
    teacher_paths = []

  train_ds, sample_ds, eval_ds = _datasets(config, files, unlabelled_files)
  if process_wide and config.seed is not None:
    keras.utils.set_random_seed(config.seed)
  if process_wide and config.deterministic:
    tf.config.experimental.enable_op_determinism()

  # Read only, so outside the strategy scope: its variables need no replicas.
  init_source = init_from.load_source(config.init_from) if config.init_from else None
  geometry = run_geometry.run_geometry(config, labels, student_input(config))
  with strategy.scope():
    teacher_models, teacher_keys = _load_teachers(config, teacher_paths, labels)
    student, distiller, optimizer, init_notes = _build(
        config, geometry, teacher_models, teacher_keys, init_source)

  os.makedirs(config.model_dir, exist_ok=True)
  manager, step = _restore(config, strategy, chief, student, optimizer, init_notes)
  if step % config.checkpoint_every:
    raise ValueError(f"{config.model_dir} resumes at step {step}, which is not a multiple of "
                     f"--checkpoint_every={config.checkpoint_every}: relaunch with the "
                     "--checkpoint_every it was trained with (its flags.txt).")
  initial_epoch = step // config.checkpoint_every
  epochs = config.train_steps // config.checkpoint_every
  if chief:
    _write_run_files(config, flags_text, label_map_path, strategy)
  if config.deterministic and step:
    train_ds = train_ds.skip(step)  # Same batches as an uninterrupted run.
  callbacks, validation = _callbacks(config, chief, step, labels, optimizer, manager, eval_ds,
                                     sample_ds)

  verbose, bar = _progress(config, chief, step, epochs)
  if bar is not None:
    callbacks.append(bar)  # Last: its epoch line sees val_top1 and clips_per_second.
  start = time.perf_counter()
  history = distiller.fit(
      train_ds, epochs=epochs, initial_epoch=initial_epoch,
      steps_per_epoch=config.checkpoint_every, callbacks=callbacks, verbose=verbose,
      shuffle=False)  # The dataset shuffles; Keras would warn that it cannot.
  final = _final_metrics(history, time.perf_counter() - start, optimizer, validation,
                         distiller, epochs)
  if manager.latest_checkpoint is None or not manager.latest_checkpoint.endswith(
      f"-{final['step']}"):
    manager.save(checkpoint_number=final["step"])
  if chief:
    student.save(os.path.join(config.model_dir, defaults.MODEL_FILE))
    with open(os.path.join(config.model_dir, defaults.FINAL_METRICS_FILE), "w") as f:
      json.dump(final, f, indent=2)
  train_config.check_finite(final)
  return final
