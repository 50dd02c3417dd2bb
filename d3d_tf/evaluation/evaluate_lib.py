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

from d3d_tf.common import file_system as fs
from d3d_tf.common import defaults
from d3d_tf.common import progress
from d3d_tf.models import flow_settings, model_files
from d3d_tf.data import datasets
from d3d_tf.data import records
from d3d_tf.evaluation import ensemble
from d3d_tf.evaluation.eval_config import EvalConfig
from d3d_tf.evaluation import metrics
from d3d_tf.evaluation import report
from d3d_tf.models.clip_geometry import geometry_of


# What a flow row's cost column holds when nothing says what the flow cost.
UNKNOWN = "unknown"


def _converter_summary(folder: str) -> Optional[Dict]:
  """The converter's summary.json in `folder` (a local path or a URL), None when absent."""
  path = os.path.join(folder, defaults.SUMMARY_FILE)
  if not fs.exists(path):
    return None
  with fs.open(path, encoding="utf-8") as f:
    return json.load(f)


def _converter_flow_seconds(files) -> Optional[float]:
  """`flow_seconds_per_video` of the converter's summary.json beside the records.

  None when there is no summary or it measured no flow (0 or absent: flow "none", or nothing
  converted): the cost is then unknown, never 0.
  """
  summary = _converter_summary(os.path.dirname(files[0])) if files else None
  seconds = float((summary or {}).get("flow_seconds_per_video") or 0.0)
  return seconds if seconds > 0 else None


def flow_seconds_per_video(file_pattern,
                           given: Optional[float] = None) -> Dict[str, Optional[float]]:
  """video id -> seconds the converter spent on its optical flow, None where unknown.

  `given` (seconds per video, e.g. measured on the machine that will serve) wins for every
  video. Otherwise each record's `flow/seconds` when the converter stored it (`--flow_timing`),
  else the mean the converter measured and wrote to summary.json; else None.
  """
  files, _ = datasets.list_shards(file_pattern)
  fallback = given if given is not None else _converter_flow_seconds(files)
  spec = {records.VIDEO_ID: records.CONTEXT_SPEC[records.VIDEO_ID],
          records.FLOW_SECONDS: records.CONTEXT_SPEC[records.FLOW_SECONDS]}
  ds = tf.data.TFRecordDataset(files).map(
      lambda s: tf.io.parse_single_sequence_example(s, context_features=spec)[0])
  seconds = {}
  for context in ds:
    stored = float(context[records.FLOW_SECONDS])
    video_id = context[records.VIDEO_ID].numpy().decode("utf-8")
    seconds[video_id] = stored if stored > 0 and given is None else fallback
  return seconds


def _mean_flow_seconds(file_pattern, video_ids, given: Optional[float]):
  """The mean flow seconds of `video_ids`, or `UNKNOWN` when any video's cost is unknown."""
  if not len(video_ids):
    return UNKNOWN if given is None else given
  per_video = flow_seconds_per_video(file_pattern, given)
  values = [per_video.get(v) for v in video_ids]
  return UNKNOWN if any(v is None for v in values) else float(np.mean(values))


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
  summary = _converter_summary(folders.pop()) if len(folders) == 1 else None
  if summary is None:
    return None
  splits = summary.get("splits", {})
  prefixes = [os.path.basename(f).split("-")[0] for f in files]
  total = 0
  for prefix in set(prefixes):
    split = splits.get(prefix)
    if not split or split.get("shards") != prefixes.count(prefix):
      return None
    total += int(split.get("converted", split.get("videos", 0)))
  return total


def _check_flow(members, eval_files):
  """A flow model must see the flow it was trained on (method, bound, quantisation); returns
  notes for flow models that do not record theirs."""
  if not isinstance(eval_files, str):
    return []
  data = flow_settings.records_settings("eval_files", eval_files)
  notes = []
  for member in members:
    if member.modality == ensemble.FLOW:
      geometry = geometry_of(member.model)
      note = flow_settings.check(geometry.flow_settings if geometry else None, data,
                                 member.path, "--eval_files")
      notes += [note] if note else []
  return notes


def _inputs(modalities) -> str:
  return " + ".join(m for m in ("RGB", "flow") if m.lower() in modalities)


def evaluate(config: EvalConfig, show_progress: bool = True) -> Dict:
  """Runs the evaluation `config` describes; writes report.json / predictions.csv /
  confusion_matrix.png to `config.output_dir`.

  With `show_progress`, a bar on stderr counts videos, with a rate, and an ETA when the
  converter's summary.json gives the split's size.

  The flow rows' cost (`flow_seconds_per_video`) is the given seconds per video, else the
  records' measured flow seconds, else the converter's summary.json beside the records; with
  none of them it is `UNKNOWN` ("unknown"), which the table prints with a line saying how to
  give it.

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
    notes = notes + _check_flow(members, eval_files)
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
    flow_seconds = _mean_flow_seconds(eval_files, out["video_ids"],
                                      config.flow_seconds_per_video)

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
