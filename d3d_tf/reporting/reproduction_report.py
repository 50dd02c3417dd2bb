"""The reproduction report behind `python -m d3d_tf.report`: the quickstart table, the seed
runs' summary, the inference cost and the "When does D3D help?" section, with their figures.

A report never silently replaces one built from more: its first line records what it was built
from (quickstart, seed runs, inference cost, variants), and a report with less than the file it
would replace is refused (`refusal`) unless `force`.
"""

import glob
import json
import os
from typing import Dict, Optional

from d3d_tf.reporting import curves
from d3d_tf.reporting import markdown
from d3d_tf.reporting import plots
from d3d_tf.reporting import results_table
from d3d_tf.reporting import seeds as seeds_lib
from d3d_tf.reporting import variants as variants_lib
from d3d_tf.reporting.report_config import ReportConfig

STREAMS = ("flow", "rgb", "d3d")
CONTENTS_MARK = "<!-- d3d_tf.report built from: "


def contents_line(contents: Dict) -> str:
  """The report's first line: what it was built from, for the next report to compare with."""
  return f"{CONTENTS_MARK}{json.dumps(contents, sort_keys=True)} -->"


def read_contents(path: str) -> Optional[Dict]:
  """What an existing report was built from; None: no such file; {} for one without the line."""
  if not os.path.isfile(path):
    return None
  with open(path, encoding="utf-8") as f:
    first = f.readline().strip()
  if first.startswith(CONTENTS_MARK) and first.endswith("-->"):
    return json.loads(first[len(CONTENTS_MARK):-3])
  return {}


def _describe(contents: Dict) -> str:
  return (f"{contents.get('seed_runs', 0)} seed runs, {contents.get('variants', 0)} variants, "
          f"{'a' if contents.get('quickstart') else 'no'} quickstart table, "
          f"{'an' if contents.get('inference_cost') else 'no'} inference-cost section")


def refusal(old: Optional[Dict], new: Dict, path: str) -> Optional[str]:
  """Why `new` must not replace the report at `path` built from `old`; None: it may."""
  if old is None:
    return None
  if not old:
    return (f"--output={path} exists and does not say what it was built from (an older or "
            "hand-written report); pass --force to replace it, or choose another --output")
  if all(new.get(k, 0) >= v for k, v in old.items()):
    return None
  return (f"--output={path} was built from {_describe(old)}; this report has only "
          f"{_describe(new)}. Pass --force to replace it anyway, or choose another --output")


def _report_dir(output: str) -> str:
  """The folder of the report: its figures/ go there, and its links are relative to it."""
  return os.path.dirname(os.path.abspath(output))


def _figures(config: ReportConfig, output: str, seed_dirs, summary, quickstart_rows):
  """Draws the PNGs next to the report; returns caption -> path relative to the report."""
  figure_dir = os.path.join(_report_dir(output), "figures")
  os.makedirs(figure_dir, exist_ok=True)
  figures = {}
  curve_dirs = list(seed_dirs) or ([config.quickstart_dir] if config.quickstart_dir else [])
  runs = {s: [curves.model_curves(os.path.join(d, s)) for d in curve_dirs] for s in STREAMS}
  if any(any(c) for c in runs.values()):
    path = plots.training_curves(os.path.join(figure_dir, "training_curves.png"), runs)
    figures["Training curves"] = os.path.relpath(path, _report_dir(output))
  if summary:
    points = [dict(model=name, seconds=s["seconds_per_video"]["mean"], top1=s["top1"]["mean"],
                   top1_err=s["top1"]["std"] if s["top1"]["std"] == s["top1"]["std"] else 0.0,
                   needs_flow=s["needs_flow"]) for name, s in summary["models"].items()]
    title = f"synthetic benchmark, mean ± sd over {summary['num_seeds']} seeds"
  elif quickstart_rows:
    points = [dict(model=r["model"], seconds=r["seconds_per_video"], top1=r["top1"],
                   needs_flow=r["needs_flow"]) for r in quickstart_rows]
    title = "synthetic benchmark, quickstart"
  else:
    points = []
  if points:
    path = plots.accuracy_cost(os.path.join(figure_dir, "accuracy_cost.png"), points, title)
    figures["Accuracy against cost"] = os.path.relpath(path, _report_dir(output))
  return figures


def _variant_figure(output: str, rows) -> str:
  """Draws the variants' picture next to the report; its path relative to the report ('': no
  rows)."""
  if not rows:
    return ""
  path = plots.variant_gains(os.path.join(_report_dir(output), "figures", "when_d3d_helps.png"),
                             rows)
  return os.path.relpath(path, _report_dir(output))


def write_variants_only(config: ReportConfig, command: str) -> str:
  """Splices the variants section into the existing output; the rest stays byte for byte.

  Returns what it did, for the command to print.

  Raises:
    ValueError, FileNotFoundError: no report to splice into, a variant that cannot be read, or
      fewer variants than the report has (without `force`).
  """
  output = config.output_path()
  old = read_contents(output)
  if old is None:
    raise FileNotFoundError(
        f"--variants_only needs an existing --output; {output} does not exist")
  rows = variants_lib.collect(list(config.variant_list()))
  # Refused before anything is drawn: a refused run leaves the report's picture as it was.
  if old.get("variants", 0) > len(rows) and not config.force:
    raise ValueError(f"--output={output} has {old['variants']} variants; --variant_roots "
                     f"names {len(rows)}. Pass --force to replace it anyway, or name them all")
  with open(output, encoding="utf-8") as f:
    body = f.read().split("\n", 1)[1] if old else f.read()
  text = variants_lib.splice(body, variants_lib.section(rows, command,
                                                        _variant_figure(output, rows)))
  contents = dict(old, variants=len(rows))
  with open(output, "w", encoding="utf-8") as f:
    f.write(contents_line(contents) + "\n" + text)
  return f"Report section \"{variants_lib.HEADING}\" written to {output} ({len(rows)} variants)"


def _print_table(run_dir: str, rows) -> None:
  path = results_table.write_results(run_dir, rows)
  print(results_table.to_markdown(rows))
  print(f"\nTop-1: {results_table.versus_rgb(rows)}")
  print(f"Table written to {path}")


def write_report(config: ReportConfig, command: str) -> Optional[str]:
  """Prints the quickstart table (and writes its results.json); unless `table_only`, writes
  the reproduction report. Returns what it wrote, for the command to print (None: the table
  only).

  Raises:
    ValueError, FileNotFoundError: a run that cannot be read, or a report that would replace
      one built from more (without `force`).
  """
  quickstart_rows = None
  if config.quickstart_dir:
    quickstart_rows = results_table.collect(config.quickstart_dir)
    _print_table(config.quickstart_dir, quickstart_rows)
  if config.table_only:
    return None
  seed_dirs = sorted({d for pattern in config.seed_patterns() for d in glob.glob(pattern)})
  tables = markdown.seed_tables(seed_dirs)
  for directory, rows in zip(seed_dirs, tables):
    results_table.write_results(directory, rows)
  variant_rows = variants_lib.collect(list(config.variant_list()))
  output = config.output_path()
  cost = markdown.read_json_lines(config.inference_cost)
  contents = dict(quickstart=int(bool(quickstart_rows)), seed_runs=len(seed_dirs),
                  inference_cost=int(bool(cost)))
  if variant_rows:  # Only then: reports from before the variants section keep their line.
    contents["variants"] = len(variant_rows)
  why_not = None if config.force else refusal(read_contents(output), contents, output)
  if why_not:
    raise ValueError(why_not)
  summary = seeds_lib.aggregate(tables) if tables else None
  roots = {os.path.dirname(d) for d in seed_dirs}
  reproduce_root = roots.pop() if len(roots) == 1 else ""  # Where reproduce.sh's timing is.
  quickstart_dir = config.quickstart_dir
  text = markdown.build(
      quickstart_rows,
      markdown.read_timing(quickstart_dir) if quickstart_dir else None,
      summary, markdown.read_timing(reproduce_root) if reproduce_root else None,
      cost, _figures(config, output, seed_dirs, summary, quickstart_rows),
      command=command, seed_dirs=seed_dirs,
      quickstart_data=(results_table.evaluated_on(quickstart_dir) if quickstart_rows else ""),
      seeds_data=results_table.evaluated_on(seed_dirs[0]) if seed_dirs else "",
      variant_rows=variant_rows, variant_figure=_variant_figure(output, variant_rows))
  os.makedirs(_report_dir(output), exist_ok=True)
  with open(output, "w", encoding="utf-8") as f:
    f.write(contents_line(contents) + "\n" + text)
  return f"Report written to {output} (built from {_describe(contents)})"
