"""Evaluates one model or a late-fusion ensemble on a record split and writes the reports.

A model's input modality comes from its input channels (3: RGB, 2: flow); one eval dataset
provides every modality the ensemble needs, so all members see the same views. The clip
geometry is the one the models store (`ClipGeometry`); `EvalConfig`'s geometry fields override it.
"""

import dataclasses
import json
import os
from typing import Dict, Optional, Sequence

import numpy as np
import tensorflow as tf

from d3d_tf.common import progress
from d3d_tf.models import flow_settings, model_files
from d3d_tf.data import datasets
from d3d_tf.data import records
from d3d_tf.evaluation import ensemble
from d3d_tf.evaluation import metrics
from d3d_tf.evaluation import report
from d3d_tf.models.clip_geometry import geometry_of


@dataclasses.dataclass
class EvalConfig:
  """Evaluation protocol: K clips x crops (num_clips=0: whole videos), clip shape, batching.

  The clip shape fields left None come from the models' stored geometry; a value given
  overrides it where that is meaningful (`clip_geometry.OVERRIDABLE`).
  """
  num_clips: int = 4
  num_crops: int = 1
  num_frames: Optional[int] = None
  stride: Optional[int] = None
  crop_size: Optional[int] = None
  crop_fraction: Optional[float] = None
  batch_size: Optional[int] = None

  def geometry_overrides(self) -> Dict[str, Optional[float]]:
    return {"num_frames": self.num_frames, "stride": self.stride, "crop_size": self.crop_size,
            "crop_fraction": self.crop_fraction}


def _converter_flow_seconds(files) -> float:
  """`flow_seconds_per_video` of the converter's summary.json beside the records, else 0."""
  path = os.path.join(os.path.dirname(files[0]), "summary.json") if files else ""
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
  path = os.path.join(folders.pop(), "summary.json") if len(folders) == 1 else ""
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


def evaluate(model_paths: Sequence[str], eval_files, output_dir: str,
             label_map_path: Optional[str] = None,
             fusion_weights: Optional[Sequence[float]] = None,
             config: Optional[EvalConfig] = None, show_progress: bool = True) -> Dict:
  """Runs the evaluation, writes report.json / predictions.csv / confusion_matrix.png.

  With `show_progress`, a bar on stderr counts videos, with a rate, and an ETA when the
  converter's summary.json gives the split's size.

  Returns:
    The report dict (also in report.json), with `rows` for the table: one per model and,
    for several models, one for the fused ensemble (which is what the CSV and PNG show).
  """
  config = config or EvalConfig()
  if not model_paths:
    raise ValueError("Pass at least one model.")
  members = ensemble.load_members(model_paths, fusion_weights)
  stored = [(m.path, geometry_of(m.model)) for m in members]
  geometry, notes = model_files.resolve_for_models(stored, config.geometry_overrides())
  class_names, labels_from = model_files.resolve_labels(
      label_map_path, next((g for _, g in stored if g is not None), None), members[0].path)
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
      protocol=dict(dataclasses.asdict(config), **geometry), geometry_notes=notes,
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
