"""Evaluates one model or a late-fusion ensemble on a record split and writes the reports.

A model's input modality comes from its input channels (3: RGB, 2: flow); one eval dataset
provides every modality the ensemble needs, so all members see the same views.
"""

import dataclasses
import json
import os
from typing import Dict, Optional, Sequence

import numpy as np
import tensorflow as tf

from d3d_tf.data import datasets
from d3d_tf.data import label_map as label_map_lib
from d3d_tf.data import records
from d3d_tf.evaluation import ensemble
from d3d_tf.evaluation import metrics
from d3d_tf.evaluation import report


@dataclasses.dataclass
class EvalConfig:
  """Evaluation protocol: K clips x crops (num_clips=0: whole videos), clip shape, batching."""
  num_clips: int = 4
  num_crops: int = 1
  num_frames: int = 16
  stride: int = 1
  crop_size: int = 112
  crop_fraction: float = 0.875
  batch_size: Optional[int] = None


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


def _inputs(modalities) -> str:
  return " + ".join(m for m in ("RGB", "flow") if m.lower() in modalities)


def evaluate(model_paths: Sequence[str], eval_files, output_dir: str,
             label_map_path: Optional[str] = None,
             fusion_weights: Optional[Sequence[float]] = None,
             config: Optional[EvalConfig] = None) -> Dict:
  """Runs the evaluation, writes report.json / predictions.csv / confusion_matrix.png.

  Returns:
    The report dict (also in report.json), with `rows` for the table: one per model and,
    for several models, one for the fused ensemble (which is what the CSV and PNG show).
  """
  config = config or EvalConfig()
  if not model_paths:
    raise ValueError("Pass at least one model.")
  if not label_map_path:
    label_map_path = os.path.join(os.path.dirname(os.path.abspath(model_paths[0])),
                                  "label_map.txt")
  class_names = label_map_lib.read_label_map(label_map_path)
  members = ensemble.load_members(model_paths, fusion_weights)
  num_classes = int(members[0].model.output_shape[-1])
  if num_classes != len(class_names):
    raise ValueError(f"The models output {num_classes} classes but {label_map_path} lists "
                     f"{len(class_names)}.")
  modalities = {m.modality for m in members}
  ds = datasets.eval_dataset(
      eval_files, num_clips=config.num_clips, num_crops=config.num_crops,
      num_frames=config.num_frames, stride=config.stride, crop_size=config.crop_size,
      with_rgb=ensemble.RGB in modalities, with_flow=ensemble.FLOW in modalities,
      batch_size=config.batch_size, crop_fraction=config.crop_fraction)
  out = ensemble.run_views(members, ds)
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
      protocol=dataclasses.asdict(config), num_classes=num_classes,
      summary=rows[-1], rows=rows, confusion_matrix=matrix.tolist(), outputs=paths)
  report.write_json(paths["json"], result)
  report.write_predictions_csv(paths["csv"], out["video_ids"], labels, scores, class_names)
  report.write_confusion_png(paths["png"], matrix, class_names, title=rows[-1]["model"])
  return result
