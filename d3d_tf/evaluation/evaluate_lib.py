"""Evaluates one model or a late-fusion ensemble on a record split and writes the reports.

A model's input modality comes from its input channels (3: RGB, 2: flow); one eval dataset
provides every modality the ensemble needs, so all members see the same views. The clip
geometry is the one the models store (`ClipGeometry`); `EvalConfig`'s geometry fields override
it.
"""

import json
import os
from typing import Dict, Optional

import numpy as np
import tensorflow as tf

from d3d_tf.common import defaults
from d3d_tf.common import progress
from d3d_tf.models import model_files
from d3d_tf.data import datasets
from d3d_tf.data import records
from d3d_tf.evaluation import ensemble
from d3d_tf.evaluation.eval_config import EvalConfig
from d3d_tf.evaluation import metrics
from d3d_tf.evaluation import report
from d3d_tf.models.clip_geometry import geometry_of


def _converter_flow_seconds(files) -> float:
  """`flow_seconds_per_video` of the converter's summary.json beside the records, else 0."""
  path = os.path.join(os.path.dirname(files[0]), defaults.SUMMARY_FILE) if files else ""
  if not path or not os.path.isfile(path):
    return 0.0
  with open(path, encoding="utf-8") as f:
    return float(json.load(f).get("flow_seconds_per_video", 0.0))


def flow_seconds_per_video(file_pattern) -> Dict[str, float]:
  """video id -> seconds the converter spent on its optical flow.

  Each record's `flow/seconds` when the converter stored it (`--flow_timing`); otherwise the
  mean the converter measured and wrote to summary.json, for every video.
  """
  files, _ = datasets.list_shards(file_pattern)
  fallback = _converter_flow_seconds(files)
  spec = {records.VIDEO_ID: records.CONTEXT_SPEC[records.VIDEO_ID],
          records.FLOW_SECONDS: records.CONTEXT_SPEC[records.FLOW_SECONDS]}
  ds = tf.data.TFRecordDataset(files).map(
      lambda s: tf.io.parse_single_sequence_example(s, context_features=spec)[0])
  return {c[records.VIDEO_ID].numpy().decode("utf-8"): float(c[records.FLOW_SECONDS]) or fallback
          for c in ds}


def split_video_count(file_pattern) -> Optional[int]:
  """Videos in the matched shards, from the converter's summary.json; None when it cannot say.

  Counting the records would read the whole split once more; the summary counts them per shard
  prefix (`val-00000-of-00004`: "val"), so it answers when the pattern matches whole splits.
  """
  try:
    files, _ = datasets.list_shards(file_pattern)
  except ValueError:
    return None
  folders = {os.path.dirname(f) for f in files}
  path = os.path.join(folders.pop(), defaults.SUMMARY_FILE) if len(folders) == 1 else ""
  if not path or not os.path.isfile(path):
    return None
  with open(path, encoding="utf-8") as f:
    splits = json.load(f).get("splits", {})
  prefixes = [os.path.basename(f).split("-")[0] for f in files]
  total = 0
  for prefix in set(prefixes):
    split = splits.get(prefix)
    if not split or split.get("shards") != prefixes.count(prefix):
      return None
    total += int(split.get("converted", split.get("videos", 0)))
  return total


def _check_flow_bound(stored, eval_files):
  """A flow model must see flow in the units it was trained on (pixels / its records' bound)."""
  bounds = {path: g.flow_bound for path, g in stored if g is not None and g.flow_bound}
  if not bounds or not isinstance(eval_files, str):
    return
  records_bound = records.flow_bound_of("eval_files", eval_files)
  for path, bound in bounds.items():
    if abs(bound - records_bound) > 1e-6:
      raise ValueError(f"{path} was trained on flow clipped to {bound:g} px, but "
                       f"--eval_files={eval_files!r} stores flow with bound {records_bound:g}: "
                       f"re-convert with --flow_bound={bound:g}.")


def _inputs(modalities) -> str:
  return " + ".join(m for m in ("RGB", "flow") if m.lower() in modalities)


def evaluate(config: EvalConfig, show_progress: bool = True) -> Dict:
  """Runs the evaluation `config` describes; writes report.json / predictions.csv /
  confusion_matrix.png to `config.output_dir`.

  With `show_progress`, a bar on stderr counts videos, with a rate, and an ETA when the
  converter's summary.json gives the split's size.

  Returns:
    The report dict (also in report.json), with `rows` for the table: one per model and,
    for several models, one for the fused ensemble (which is what the CSV and PNG show).
  """
  config.validate()
  eval_files, output_dir = config.eval_files, config.output_dir
  weights = None if config.fusion_weights is None else list(config.fusion_weights)
  members = ensemble.load_members(list(config.models), weights)
  stored = [(m.path, geometry_of(m.model)) for m in members]
  geometry, notes = model_files.resolve_for_models(stored, config.geometry_overrides())
  class_names, labels_from = model_files.resolve_labels(
      config.label_map, next((g for _, g in stored if g is not None), None), members[0].path)
  num_classes = int(members[0].model.output_shape[-1])
  if num_classes != len(class_names):
    raise ValueError(f"The models output {num_classes} classes but {labels_from} lists "
                     f"{len(class_names)}.")
  modalities = {m.modality for m in members}
  if ensemble.FLOW in modalities:
    _check_flow_bound(stored, eval_files)
  ds = datasets.eval_dataset(
      eval_files, num_clips=config.num_clips, num_crops=config.num_crops,
      with_rgb=ensemble.RGB in modalities, with_flow=ensemble.FLOW in modalities,
      batch_size=config.batch_size, **geometry)
  with progress.ProgressBar(total=split_video_count(eval_files), unit="videos",
                            desc="evaluating", disable=not show_progress) as bar:
    out = ensemble.run_views(members, ds, bar)
  labels = out["labels"]
  flow_seconds = None
  if ensemble.FLOW in modalities:
    per_video = flow_seconds_per_video(eval_files)
    flow_seconds = float(np.mean([per_video.get(v, 0.0) for v in out["video_ids"]])) \
        if len(out["video_ids"]) else 0.0

  rows = []
  for i, m in enumerate(members):
    row = dict(model=m.name, inputs=_inputs({m.modality}), weight=m.weight,
               clips_per_second=m.clips_per_second,
               flow_seconds_per_video=flow_seconds if m.modality == ensemble.FLOW else None,
               **metrics.summary(ensemble.softmax(out["logits"][i]), labels))
    rows.append(row)
  scores = ensemble.fuse(out["logits"], [m.weight for m in members])
  if len(members) > 1:
    total = sum(m.seconds for m in members)
    views = members[0].views
    rows.append(dict(model="ensemble(" + ",".join(f"{m.weight:g}" for m in members) + ")",
                     inputs=_inputs(modalities), weight=None,
                     clips_per_second=views / total if total > 0 else float("nan"),
                     flow_seconds_per_video=flow_seconds, **metrics.summary(scores, labels)))

  os.makedirs(output_dir, exist_ok=True)
  paths = report.output_paths(output_dir)
  predictions = np.argmax(scores, axis=1)
  matrix = metrics.confusion_matrix(labels, predictions, num_classes)
  result = dict(
      models=[m.path for m in members], fusion_weights=[m.weight for m in members],
      fusion="weighted mean of per-model softmax of view-averaged logits",
      eval_files=eval_files if isinstance(eval_files, str) else list(eval_files),
      protocol=dict(config.protocol(), **geometry), geometry_notes=notes,
      labels_from=labels_from, num_classes=num_classes,
      summary=rows[-1], rows=rows, confusion_matrix=matrix.tolist(), outputs=paths)
  report.write_json(paths["json"], result)
  report.write_predictions_csv(paths["csv"], out["video_ids"], labels, scores, class_names)
  split = eval_files if isinstance(eval_files, str) else ", ".join(eval_files)
  names = " + ".join(m.name for m in members)
  report.write_confusion_png(paths["png"], matrix, class_names,
                             title=f"{rows[-1]['model']}: {names}\non {split}")
  if len(members) > 1:
    for i, m in enumerate(members):
      single = metrics.confusion_matrix(labels, np.argmax(out["logits"][i], axis=1), num_classes)
      report.write_confusion_png(report.model_confusion_png(output_dir, m.path), single,
                                 class_names, title=f"{m.name}\non {split}")
  return result
