"""The run behind `python -m d3d_tf.probe`: one config, one function, resumable.

For each model (and the random-init control) and each endpoint, a linear `FlowDecoder` learns
to predict the clip's optical flow from the frozen features; the held-out EPE of each probe is
reported next to predicting zero flow and predicting the training mean flow. Clips come from
the training pipeline (`datasets.train_dataset` for fitting, the centre views of
`datasets.eval_dataset` for scoring), so RGB and flow are aligned exactly as in D3D training.
"""

import dataclasses
import json
import os
import time
from typing import Dict, List, Optional, Sequence

import keras
import numpy as np
import tensorflow as tf

from d3d_tf.common import defaults
from d3d_tf.data import datasets, records
from d3d_tf.evaluation import report
from d3d_tf.models import clip_geometry as geometry_lib
from d3d_tf.models import flow_settings
from d3d_tf.probing import features as features_lib
from d3d_tf.probing import plots, targets
from d3d_tf.probing import probe_config
from d3d_tf.probing.probe_config import CLIP_DEFAULTS, ProbeConfig
from d3d_tf.probing.decoder import FlowDecoder
from d3d_tf.probing.metrics import EPEMeter
from d3d_tf.probing.trainer import FlowProbeTrainer, decoder_key
from d3d_tf.common.progress import ProgressBar
from d3d_tf.training import callbacks as cbs

PROBE_JSON = "probe.json"
BARS_PNG = "probe_epe.png"
PANELS_PNG = "probe_flow.png"
META = "_meta"  # probe.json key of the run's metadata (model names cannot start with "_").

def _clip_geometry(config: ProbeConfig, stored) -> Dict[str, float]:
  """num_frames, stride, crop_size, min_area: the flags, else the first model's, else defaults."""
  inherited = features_lib.training_flags(config.models[0]) if config.models else {}
  if stored is not None:
    inherited.update(num_frames=stored.num_frames, stride=stored.stride,
                     crop_size=stored.crop_size)
  geometry = {}
  for name, default in CLIP_DEFAULTS.items():
    value = getattr(config, name)
    geometry[name] = value if value is not None else inherited.get(name, default)
  if geometry["num_frames"] % targets.TIME_STRIDE:
    raise ValueError(f"--num_frames must be even (the target averages flow over "
                     f"{targets.TIME_STRIDE}-frame windows); got {geometry['num_frames']}.")
  if geometry["crop_size"] % config.space_stride:
    raise ValueError(f"--crop_size ({geometry['crop_size']}) must be a multiple of "
                     f"--space_stride ({config.space_stride}).")
  return geometry


def _load_models(config: ProbeConfig):
  """Names, backbones and input keys of the models, the random-init control last."""
  names = features_lib.model_names(config.models) if config.models else []
  loaded = [features_lib.load_backbone(p) for p in config.models]
  backbones = [backbone for backbone, _ in loaded]
  if config.random_init:
    if features_lib.RANDOM_INIT in names:
      raise ValueError(f"--model names a model {features_lib.RANDOM_INIT!r}, the name of the "
                       "--random_init control; rename its dir.")
    channels = geometry_lib.CHANNELS_BY_MODALITY[config.random_init_input]
    keras.utils.set_random_seed(config.seed)
    backbones.append(features_lib.random_backbone(
        backbones[0] if backbones else None, channels, config.depth_multiplier))
    names.append(features_lib.RANDOM_INIT)
  for name in names:
    if name.startswith("_"):
      raise ValueError(f"Model name {name!r} starts with '_', reserved for {META!r} in "
                       f"{PROBE_JSON}; rename its dir.")
  for path, (backbone, geometry) in zip(config.models, loaded):
    if features_lib.input_key(backbone) == "flow":  # It must read the flow it was trained on.
      for flag in ("train_files", "eval_files"):
        note = flow_settings.check(
            geometry.flow_settings if geometry else None,
            flow_settings.records_settings(flag, getattr(config, flag)), path, f"--{flag}")
        if note:
          print(f"note: {note}", flush=True)
  first_geometry = loaded[0][1] if loaded else None
  return names, backbones, [features_lib.input_key(b) for b in backbones], first_geometry


def fit_statistics(trainer: FlowProbeTrainer, dataset, num_batches: int, show: bool = True):
  """Sets each decoder's feature statistics, and its bias to the mean flow, from a few batches.

  Fixed statistics (not batch norm's running ones) keep the decoder the same affine map in
  training and evaluation; starting at the mean flow makes an untrained probe the mean-flow
  baseline, so any gain is the features' doing.
  """
  sums, squares, counts = {}, {}, {}
  flow, positions = np.zeros(2), 0
  bar = ProgressBar(total=num_batches, unit="batches", desc="probe statistics", disable=not show)
  for x, _ in dataset.take(num_batches):
    bar.update()
    target = trainer.target(x).numpy().reshape([-1, 2])
    flow, positions = flow + target.sum(axis=0), positions + len(target)
    for model, by_endpoint in trainer.features(x).items():
      for endpoint, value in by_endpoint.items():
        value = tf.reshape(tf.cast(value, tf.float64), [-1, value.shape[-1]]).numpy()
        key = (model, endpoint)
        sums[key] = sums.get(key, 0.0) + value.sum(axis=0)
        squares[key] = squares.get(key, 0.0) + (value * value).sum(axis=0)
        counts[key] = counts.get(key, 0) + len(value)
  for key, decoder in trainer.decoders.items():
    mean = sums[key] / counts[key]
    decoder.standardize.set_statistics(mean, np.maximum(squares[key] / counts[key] - mean**2, 0))
    decoder.flow.bias.assign((flow / positions).astype(np.float32))
  bar.close()


def evaluate(trainer: FlowProbeTrainer, dataset, num_panels: int):
  """Held-out EPE of every probe and the baselines; and the first clips for the panels."""
  meter = EPEMeter(trainer.mean_flow())
  predict = tf.function(lambda x: (trainer.target(x), trainer(x, training=False)),
                        reduce_retracing=True)
  panels = {"frames": [], "true": [], "predicted": {}}
  with ProgressBar(desc="probe eval", unit="clips") as bar:
    for x, _ in dataset:
      target, predicted = predict({k: x[k] for k in ("rgb", "flow") if k in x})
      target = target.numpy()
      predicted = {k: v.numpy() for k, v in predicted.items()}
      meter.update(target, {decoder_key(*k): v for k, v in predicted.items()})
      shown = max(num_panels - len(panels["true"]), 0)
      if shown:
        middle = (target.shape[1] // 2) * targets.TIME_STRIDE
        panels["frames"].extend(x["rgb"][:shown, middle].numpy())
        panels["true"].extend(target[:shown])
        for (m, e), v in predicted.items():
          panels["predicted"].setdefault(m, {}).setdefault(e, []).extend(v[:shown])
      bar.update(len(target))
  return meter, panels


def run_probe(config: ProbeConfig, flags_text: Optional[str] = None,
              check_output_dir: bool = True) -> Dict:
  """Runs (or resumes) a probe; returns what it writes to `output_dir/probe.json`.

  `check_output_dir`: apply `probe_config.prepare_output_dir` (--overwrite, the relaunch
  check; `d3d_tf.probe` does it before importing TensorFlow).

  Raises:
    ValueError, FileNotFoundError: Bad flags, files or models; the message names the flag
      (`config_lib.ChangedSettings`, a ValueError, for a relaunch with other settings).
  """
  config.validate()
  if check_output_dir:
    for line in probe_config.prepare_output_dir(config):
      print(line, flush=True)
  bound = records.flow_bound_of("train_files", config.train_files)
  eval_bound = records.flow_bound_of("eval_files", config.eval_files)
  if eval_bound != bound:
    raise ValueError(f"--train_files records have flow bound {bound} but --eval_files records "
                     f"{eval_bound}; the probe needs one.")
  names, backbones, keys, stored = _load_models(config)
  if not config.endpoints:
    config = dataclasses.replace(config, endpoints=tuple(features_lib.default_endpoints(backbones)))
  geometry = _clip_geometry(config, stored)
  grid = targets.target_shape(geometry["num_frames"], geometry["crop_size"],
                              config.space_stride)

  clip = dict(num_frames=geometry["num_frames"], stride=geometry["stride"],
              crop_size=geometry["crop_size"])

  def train_data():
    # Deterministic: an instrument's numbers should repeat for the same --seed.
    return datasets.train_dataset(
        config.train_files, batch_size=config.batch_size, with_rgb="rgb" in keys,
        with_flow=True, seed=config.seed, min_area=geometry["min_area"], deterministic=True,
        **clip)

  # Before the global seed, as in train_lib: datasets carry their own explicit seeds.
  train_ds, statistics_ds = train_data(), train_data()
  eval_ds = datasets.eval_dataset(
      config.eval_files, num_clips=config.eval_clips, with_rgb=True, with_flow=True,
      batch_size=config.batch_size, **clip)
  keras.utils.set_random_seed(config.seed)

  extractors, decoders = {}, {}
  for name, backbone in zip(names, backbones):
    extractors[name] = features_lib.frozen_extractor(backbone, config.endpoints, name)
    for endpoint in config.endpoints:
      channels = extractors[name].output[endpoint].shape[-1]
      decoders[(name, endpoint)] = FlowDecoder(
          channels, grid, name=f"decoder_{name}_{endpoint}".replace("/", "_"))
  trainer = FlowProbeTrainer(extractors, dict(zip(names, keys)), decoders, bound,
                             config.space_stride)
  schedule = keras.optimizers.schedules.CosineDecay(config.learning_rate, config.steps)
  optimizer = keras.optimizers.Adam(schedule)
  optimizer.build(trainer.decoder_variables)  # Variables exist before a restore.
  trainer.compile(optimizer=optimizer, jit_compile=False)

  os.makedirs(config.output_dir, exist_ok=True)
  with open(os.path.join(config.output_dir, defaults.FLAGS_FILE), "w", encoding="utf-8") as f:
    f.write(flags_text if flags_text is not None else config.to_flagfile())
  # The control's weights and calibrated statistics come from the seed and data: checkpoint
  # them, so a resumed probe fits the same network.
  control = {"random_init": backbones[-1]} if config.random_init else {}
  checkpoint = trainer.checkpoint(optimizer, **control)
  manager = tf.train.CheckpointManager(
      checkpoint, os.path.join(config.output_dir, "checkpoints"), max_to_keep=2)
  if manager.latest_checkpoint:
    checkpoint.restore(manager.latest_checkpoint).assert_existing_objects_matched()
  step = int(optimizer.iterations.numpy())
  if step == 0:
    if config.random_init:
      features_lib.calibrate_batch_norm(extractors[names[-1]], (
          x[keys[-1]] for x, _ in statistics_ds.take(config.statistics_batches)))
    fit_statistics(trainer, statistics_ds, config.statistics_batches)
  print(f"Probing {names} at {list(config.endpoints)}: target grid {grid} (T/2, S/"
        f"{config.space_stride}), step {step} of {config.steps}; output {config.output_dir}",
        flush=True)

  if step:
    train_ds = train_ds.skip(step)  # Deterministic data: the batches of an uninterrupted run.
  start = time.perf_counter()
  epochs = config.steps // config.checkpoint_every
  callbacks = [keras.callbacks.TerminateOnNaN(), cbs.CheckpointEveryEpoch(manager, optimizer)]
  verbose, bar = cbs.run_progress(config.verbose, config.steps, step, epochs,
                                  desc="probing")
  history = trainer.fit(
      train_ds, epochs=epochs, initial_epoch=step // config.checkpoint_every,
      steps_per_epoch=config.checkpoint_every, callbacks=callbacks + [bar] if bar else callbacks,
      verbose=verbose)
  train_seconds = time.perf_counter() - start

  meter, panels = evaluate(trainer, eval_ds, config.num_panels)
  scores = meter.result()
  json_path = os.path.join(config.output_dir, PROBE_JSON)
  previous = {}
  if os.path.isfile(json_path):  # A relaunch after training ended keeps the last train EPE.
    with open(json_path, encoding="utf-8") as f:
      previous = json.load(f)
  results = {}
  for name in names:
    results[name] = {}
    for endpoint in config.endpoints:
      key = decoder_key(name, endpoint)
      train_epe = history.history.get(key)
      train_epe = (train_epe[-1] if train_epe else
                   previous.get(name, {}).get(endpoint, {}).get("train_epe"))
      results[name][endpoint] = {
          "epe": scores[key], "zero_epe": scores["zero_epe"], "mean_epe": scores["mean_epe"],
          "train_epe": train_epe}
  output = dict(results)
  output[META] = {
      "models": {n: {"path": p, "input": k} for n, p, k in zip(
          names, list(config.models) + [None], keys)},
      "endpoints": list(config.endpoints), "steps": int(optimizer.iterations.numpy()),
      "train_seconds": train_seconds, "units": "pixels per frame of the crop_size^2 clip",
      "target_shape": list(grid), "space_stride": config.space_stride,
      "time_stride": targets.TIME_STRIDE, "flow_bound": bound, **geometry,
      "eval_clips": meter.clips, "train_clips": int(optimizer.iterations.numpy()) *
      config.batch_size, "mean_flow": trainer.mean_flow().tolist(),
      "zero_epe": scores["zero_epe"], "mean_epe": scores["mean_epe"]}
  report.write_json(json_path, output)
  plots.epe_bar_chart(os.path.join(config.output_dir, BARS_PNG), results, config.endpoints)
  if panels["true"]:
    plots.flow_panels(
        os.path.join(config.output_dir, PANELS_PNG), np.stack(panels["frames"]),
        np.stack(panels["true"]),
        {m: {e: np.stack(v) for e, v in by_e.items()} for m, by_e in panels["predicted"].items()},
        config.endpoints)
  print(format_table(results, config.endpoints), flush=True)
  return output


def format_table(results: Dict, endpoints: Sequence[str]) -> str:
  """EPE table: endpoints as rows, models as columns, baselines last."""
  models: List[str] = list(results)
  first = results[models[0]][endpoints[0]]
  width = max([len(m) for m in models] + [8])
  lines = ["EPE (pixels)".ljust(16) + "".join(m.rjust(width + 2) for m in models)]
  for e in endpoints:
    lines.append(e.ljust(16) + "".join(f"{results[m][e]['epe']:{width + 2}.3f}" for m in models))
  lines.append(f"zero flow: {first['zero_epe']:.3f}   training mean flow: "
               f"{first['mean_epe']:.3f}")
  return "\n".join(lines)
