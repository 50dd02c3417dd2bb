"""Evaluation outputs: `report.json`, a per-video predictions CSV, a confusion PNG, a table.

The printed table puts each row's accuracy next to its cost (inputs needed, clips/s and, for
rows with a flow model, the optical-flow seconds per video), which is the D3D argument.
"""

import csv
import json
import math
import os
from typing import Dict, List, Sequence

import numpy as np

REPORT_JSON = "report.json"
PREDICTIONS_CSV = "predictions.csv"
CONFUSION_PNG = "confusion_matrix.png"


def _clean(value):
  """JSON-safe: NaN/inf -> None, NumPy scalars -> Python."""
  if isinstance(value, dict):
    return {k: _clean(v) for k, v in value.items()}
  if isinstance(value, (list, tuple)):
    return [_clean(v) for v in value]
  if isinstance(value, (np.floating, float)):
    value = float(value)
    return value if math.isfinite(value) else None
  if isinstance(value, np.integer):
    return int(value)
  return value


def write_json(path: str, report: Dict) -> str:
  with open(path, "w", encoding="utf-8") as f:
    json.dump(_clean(report), f, indent=2)
  return path


def write_predictions_csv(path: str, video_ids: Sequence[str], labels: np.ndarray,
                          scores: np.ndarray, class_names: Sequence[str], top_k: int = 5) -> str:
  """One row per video: id, true label, top-1 prediction, correct, top-k labels and scores."""
  k = min(top_k, scores.shape[1])
  top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
  with open(path, "w", encoding="utf-8", newline="") as f:
    writer = csv.writer(f)
    writer.writerow(["video_id", "label_index", "label", "prediction_index", "prediction",
                     "correct", "score"] + [f"top{i + 1}" for i in range(k)]
                    + [f"top{i + 1}_score" for i in range(k)])
    for vid, y, row, s in zip(video_ids, labels, top, scores):
      writer.writerow([vid, int(y), class_names[int(y)], int(row[0]), class_names[int(row[0])],
                       int(row[0] == y), f"{s[row[0]]:.6f}"]
                      + [class_names[int(c)] for c in row] + [f"{s[c]:.6f}" for c in row])
  return path


def confusion_figure(matrix: np.ndarray, class_names: Sequence[str], title: str = ""):
  """Row-normalised confusion matrix with raw counts, so readers see rates and sample sizes."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  n = matrix.shape[0]
  norm = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
  accuracy = np.trace(matrix) / max(matrix.sum(), 1)
  size = min(5 + 0.4 * n, 30)
  fig, ax = plt.subplots(figsize=(size + 1, size))
  image = ax.imshow(norm, cmap="Blues", vmin=0.0, vmax=1.0)
  bar = fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
  bar.set_label("fraction of the true class")
  ax.set_xlabel("predicted")
  ax.set_ylabel("true")
  ax.set_title(f"{title or 'confusion matrix'}\ntop-1 {100 * accuracy:.1f}% "
               f"({int(np.trace(matrix))}/{int(matrix.sum())}), rows normalised", fontsize=10)
  if n <= 50:
    ax.set_xticks(range(n), class_names, rotation=45, ha="right", fontsize=9)
    ax.set_yticks(range(n), class_names, fontsize=9)
  if n <= 30:
    for i, j in zip(*np.nonzero(matrix)):
      ax.text(j, i, str(int(matrix[i, j])), ha="center", va="center", fontsize=8,
              color="white" if norm[i, j] > 0.5 else "black")
  fig.tight_layout()
  return fig


def write_confusion_png(path: str, matrix: np.ndarray, class_names: Sequence[str],
                        title: str = "") -> str:
  """Writes `confusion_figure` to `path`."""
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  fig = confusion_figure(matrix, class_names, title)
  fig.savefig(path, dpi=100)
  plt.close(fig)
  return path


def model_confusion_png(output_dir: str, model_path: str) -> str:
  """Per-model image name next to the ensemble's: `confusion_matrix_<model-stem>.png`."""
  stem = os.path.splitext(os.path.basename(model_path))[0]
  parent = os.path.basename(os.path.dirname(os.path.abspath(model_path)))
  # quickstart models are all `<stream>/student.keras`: the folder tells them apart.
  name = f"{parent}_{stem}" if stem == "student" and parent else stem
  return os.path.join(output_dir, f"confusion_matrix_{name}.png")


# Printed under the table when a flow row's cost is "unknown".
UNKNOWN_FLOW_COST_NOTE = (
    "flow s/video unknown: the records store no flow seconds and no converter summary.json "
    "lies beside them; pass --flow_seconds_per_video=SECONDS, or keep build_tfrecords' "
    "summary.json next to the records.")


def format_table(rows: List[Dict]) -> str:
  """Rows with model, inputs, top1, top5, mean_per_class, clips_per_second, flow_seconds.

  A flow row whose cost is unknown (the string "unknown") shows it so, and one line under the
  table says how to give it: a cost of 0.0 would make the flow look free.
  """
  def pct(v):
    return "-" if v is None or v != v else f"{100 * v:.2f}"
  def num(v, fmt):
    if isinstance(v, str):
      return v
    return "-" if v is None or v != v else format(v, fmt)
  header = ["model", "inputs", "top-1", "top-5", "mean/class", "clips/s", "flow s/video"]
  body = [[r["model"], r["inputs"], pct(r["top1"]), pct(r["top5"]), pct(r["mean_per_class"]),
           num(r["clips_per_second"], ".1f"), num(r.get("flow_seconds_per_video"), ".2f")]
          for r in rows]
  widths = [max(len(str(x)) for x in col) for col in zip(header, *body)]
  line = lambda cells: "  ".join(str(c).ljust(w) for c, w in zip(cells, widths)).rstrip()
  lines = [line(header), line(["-" * w for w in widths])] + [line(b) for b in body]
  if any(isinstance(r.get("flow_seconds_per_video"), str) for r in rows):
    lines.append(UNKNOWN_FLOW_COST_NOTE)
  return "\n".join(lines)


def output_paths(output_dir: str) -> Dict[str, str]:
  return {k: os.path.join(output_dir, v) for k, v in
          (("json", REPORT_JSON), ("csv", PREDICTIONS_CSV), ("png", CONFUSION_PNG))}
