"""The quickstart's results table: five recognisers, their accuracy and their cost per video.

A run directory (see WORKSPACE.md) holds two evaluation reports, `eval/two_stream` (RGB
baseline and flow teacher, then their fusion) and `eval/d3d_flow` (D3D student and flow
teacher, then their fusion). Their rows give the table the paper argues with: what each
recogniser needs at test time, its accuracy, and its inference seconds per video including
optical flow (model time per view x views per video, plus the converter's measured flow
seconds per video where flow is needed).
"""

import json
import os
from typing import Dict, List

TWO_STREAM = os.path.join("eval", "two_stream")
D3D_FLOW = os.path.join("eval", "d3d_flow")
RESULTS_JSON = "results.json"
REPORT_JSON = "report.json"

# (table name, report, row index within it). Rows follow the member order of the evaluate
# calls (see scripts/quickstart.sh), with the fused ensemble last.
ROWS = (
    ("RGB", TWO_STREAM, 0),
    ("flow", TWO_STREAM, 1),
    ("two-stream (RGB + flow)", TWO_STREAM, 2),
    ("D3D", D3D_FLOW, 0),
    ("D3D + flow", D3D_FLOW, 2),
)
COLUMNS = ("model", "needs flow at test time", "top-1", "top-5", "inference s/video incl. flow")


def _load(path: str) -> Dict:
  if not os.path.isfile(path):
    raise FileNotFoundError(f"{path} is missing: run the evaluate stage of "
                            "scripts/quickstart.sh (or d3d_tf.evaluate) for this run first.")
  with open(path, encoding="utf-8") as f:
    return json.load(f)


def _seconds_per_video(row: Dict, views_per_video: int) -> float:
  model_seconds = views_per_video / row["clips_per_second"] if row["clips_per_second"] else 0.0
  flow_seconds = row.get("flow_seconds_per_video")
  if isinstance(flow_seconds, str):  # "unknown": no measured flow cost.
    return float("nan")
  return model_seconds + (flow_seconds or 0.0)


def collect(run_dir: str) -> List[Dict]:
  """The five rows of `run_dir` as dicts: model, needs_flow, top1, top5, seconds_per_video."""
  reports = {name: _load(os.path.join(run_dir, name, REPORT_JSON))
             for name in (TWO_STREAM, D3D_FLOW)}
  rows = []
  for name, report_name, index in ROWS:
    report = reports[report_name]
    if len(report["rows"]) != 3:
      raise ValueError(f"{os.path.join(run_dir, report_name, REPORT_JSON)} should evaluate "
                       f"two models and their fusion; it has {len(report['rows'])} rows.")
    protocol = report["protocol"]
    views = max(protocol["num_clips"], 1) * protocol["num_crops"]
    row = report["rows"][index]
    rows.append(dict(model=name, needs_flow=bool(row.get("flow_seconds_per_video") is not None),
                     top1=row["top1"], top5=row["top5"],
                     seconds_per_video=_seconds_per_video(row, views), source=row["model"]))
  return rows


def evaluated_on(run_dir: str) -> str:
  """"N videos of `<eval_files>`": what the table of `run_dir` was measured on."""
  report = _load(os.path.join(run_dir, TWO_STREAM, REPORT_JSON))
  files = report["eval_files"]
  files = files if isinstance(files, str) else ", ".join(files)
  return f"{report['summary']['num_videos']} videos of `{files}`"


def gap_closed(rows: List[Dict]) -> float:
  """Fraction of the RGB-to-two-stream top-1 gap that D3D closes (nan without a gap)."""
  by_name = {r["model"]: r for r in rows}
  gap = by_name["two-stream (RGB + flow)"]["top1"] - by_name["RGB"]["top1"]
  if gap <= 0:
    return float("nan")
  return (by_name["D3D"]["top1"] - by_name["RGB"]["top1"]) / gap


def _points(name: str, diff: float) -> str:
  return f"{name} is {abs(100 * diff):.1f} points {'above' if diff >= 0 else 'below'} RGB"


def versus_rgb(rows: List[Dict]) -> str:
  """Top-1 of D3D and two-stream against RGB in plain words; a ratio of gaps misreads."""
  by_name = {r["model"]: r for r in rows}
  rgb = by_name["RGB"]["top1"]
  return (_points("D3D", by_name["D3D"]["top1"] - rgb) + "; "
          + _points("two-stream", by_name["two-stream (RGB + flow)"]["top1"] - rgb) + ".")


def _rounded(row: Dict) -> Dict:
  """As the table prints them: accuracies to 4 decimals (fractions), seconds to 3."""
  digits = dict(top1=4, top5=4, seconds_per_video=3)
  return {k: round(v, digits[k]) if k in digits and v is not None else v
          for k, v in row.items()}


def to_markdown(rows: List[Dict]) -> str:
  """A GitHub-markdown table with the issue's columns (accuracies in %)."""
  lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
  for r in rows:
    lines.append(f"| {r['model']} | {'yes' if r['needs_flow'] else 'no'} | "
                 f"{100 * r['top1']:.1f} | {100 * r['top5']:.1f} | "
                 f"{r['seconds_per_video']:.3f} |")
  return "\n".join(lines)


def write_results(run_dir: str, rows: List[Dict]) -> str:
  """Writes `<run_dir>/results.json`: the rows and the fraction of the gap D3D closes."""
  path = os.path.join(run_dir, RESULTS_JSON)
  closed = gap_closed(rows)
  with open(path, "w", encoding="utf-8") as f:
    json.dump(dict(rows=[_rounded(r) for r in rows], versus_rgb=versus_rgb(rows),
                   gap_closed=None if closed != closed else round(closed, 4)), f, indent=2)
  return path
