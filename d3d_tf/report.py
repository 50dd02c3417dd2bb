r"""Prints a synthetic run's results table, and writes the reproduction report.

The table has the paper's argument in five rows: RGB baseline, flow teacher, two-stream,
D3D student and D3D + flow, each with what it needs at test time, top-1/top-5 and inference
seconds per video including optical flow. It is read from the run's evaluation reports and
written to `<run>/results.json`.

Usage:
  # The quickstart's last stage: print the table, write runs/synthetic/results.json.
  python -m d3d_tf.report --quickstart_dir=runs/synthetic --table_only
  # The reproduction report: quickstart + seed runs + inference cost, with plots; by default
  # into <quickstart_dir>/report/REPRODUCTION.md.
  python -m d3d_tf.report --quickstart_dir=runs/synthetic \
    --seed_dirs='runs/reproduce/seed_*' --inference_cost=runs/reproduce/inference_cost.jsonl
  # The committed report: docs/ is written only when asked for.
  python -m d3d_tf.report ... --output=docs/REPRODUCTION.md
  # With the "When does D3D help?" section: one row per variant (issue 23).
  python -m d3d_tf.report ... \
    --variant_roots=docs/variants/fair_test.json,runs/shortcut --output=docs/REPRODUCTION.md
  # Only that section, into the existing report (the rest kept as it is):
  python -m d3d_tf.report --variants_only --output=docs/REPRODUCTION.md \
    --variant_roots=docs/variants/fair_test.json,runs/shortcut

A report never silently replaces one built from more: its first line records what it was built
from (quickstart, seed runs, inference cost), and a report with less than the file it would
replace stops with what it lacks (exit 2) unless --force.
"""

import glob
import json
import os
import sys
from typing import Dict, Optional

from absl import flags
from absl import logging

from d3d_tf.common import cli

from d3d_tf.reporting import curves
from d3d_tf.reporting import markdown
from d3d_tf.reporting import plots
from d3d_tf.reporting import results_table
from d3d_tf.reporting import seeds as seeds_lib
from d3d_tf.reporting import variants as variants_lib

_QUICKSTART_DIR = flags.DEFINE_string(
    "quickstart_dir", "runs/synthetic", "Run directory of scripts/quickstart.sh ('': none).")
_SEED_DIRS = flags.DEFINE_string(
    "seed_dirs", "runs/reproduce/seed_*",
    "Comma-separated globs of run directories that differ only in their seed "
    "(scripts/reproduce.sh).")
_INFERENCE_COST = flags.DEFINE_string(
    "inference_cost", "runs/reproduce/inference_cost.jsonl",
    "JSON lines of benchmarks/inference_cost.py ('': leave the section out).")
_VARIANT_ROOTS = flags.DEFINE_list(
    "variant_roots", [], "Comma-separated benchmark variants for the \"When does D3D help?\" "
    "section, one row each: a scripts/reproduce.sh ROOT (seed_*/, variant.json, probe/) or a "
    "docs/variants/*.json of transcribed runs. Empty: the section says none was given.")
_VARIANTS_ONLY = flags.DEFINE_boolean(
    "variants_only", False, "Only (re)write the \"When does D3D help?\" section of the existing "
    "--output from --variant_roots, keeping the rest of it as it is (its run directories need "
    "not be on this machine).")
_OUTPUT = flags.DEFINE_string(
    "output", None, "Report to write; its figures go to figures/ beside it. Default: "
    "<quickstart_dir>/report/REPRODUCTION.md (the committed one is docs/REPRODUCTION.md).")
_FORCE = flags.DEFINE_boolean(
    "force", False, "Replace --output even if it was built from more runs than this report.")
_TABLE_ONLY = flags.DEFINE_boolean(
    "table_only", False, "Only print the quickstart table and write its results.json.")

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


def _print_table(run_dir: str, rows) -> None:
  path = results_table.write_results(run_dir, rows)
  print(results_table.to_markdown(rows))
  print(f"\nTop-1: {results_table.versus_rgb(rows)}")
  print(f"Table written to {path}")


def _report_dir(output: str) -> str:
  """The folder of the report: its figures/ go there, and its links are relative to it."""
  return os.path.dirname(os.path.abspath(output))


def _figures(output: str, seed_dirs, summary, quickstart_rows):
  """Draws the PNGs next to the report; returns caption -> path relative to the report."""
  figure_dir = os.path.join(_report_dir(output), "figures")
  os.makedirs(figure_dir, exist_ok=True)
  figures = {}
  curve_dirs = list(seed_dirs) or ([_QUICKSTART_DIR.value] if _QUICKSTART_DIR.value else [])
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


def _output_path() -> str:
  if _OUTPUT.value:
    return _OUTPUT.value
  return os.path.join(_QUICKSTART_DIR.value or "runs", "report", "REPRODUCTION.md")


def _variants_only() -> None:
  """Splices the variants section into the existing --output; the rest stays byte for byte."""
  output = _output_path()
  old = read_contents(output)
  if old is None:
    cli.fail("report", f"--variants_only needs an existing --output; {output} does not exist")
  try:
    rows = variants_lib.collect([v.strip() for v in _VARIANT_ROOTS.value if v.strip()])
  except (FileNotFoundError, ValueError) as e:
    cli.fail("report", e)
  # Refused before anything is drawn: a refused run leaves the report's picture as it was.
  if old.get("variants", 0) > len(rows) and not _FORCE.value:
    cli.fail("report", f"--output={output} has {old['variants']} variants; --variant_roots "
             f"names {len(rows)}. Pass --force to replace it anyway, or name them all")
  try:
    with open(output, encoding="utf-8") as f:
      body = f.read().split("\n", 1)[1] if old else f.read()
    command = "python -m d3d_tf.report " + " ".join(sys.argv[1:])
    text = variants_lib.splice(body, variants_lib.section(rows, command,
                                                          _variant_figure(output, rows)))
  except (FileNotFoundError, ValueError) as e:
    cli.fail("report", e)
  contents = dict(old, variants=len(rows))
  with open(output, "w", encoding="utf-8") as f:
    f.write(contents_line(contents) + "\n" + text)
  print(f"Report section \"{variants_lib.HEADING}\" written to {output} ({len(rows)} variants)")


def main(argv):
  cli.no_arguments(argv, "report")
  logging.set_verbosity(logging.WARNING)  # TensorBoard's event reader logs every file at INFO.
  if _VARIANTS_ONLY.value:
    _variants_only()
    return
  try:
    quickstart_rows = None
    if _QUICKSTART_DIR.value:
      quickstart_rows = results_table.collect(_QUICKSTART_DIR.value)
      _print_table(_QUICKSTART_DIR.value, quickstart_rows)
    if _TABLE_ONLY.value:
      return
    seed_dirs = sorted({d for pattern in _SEED_DIRS.value.split(",") if pattern.strip()
                        for d in glob.glob(pattern.strip())})
    tables = markdown.seed_tables(seed_dirs)
    for directory, rows in zip(seed_dirs, tables):
      results_table.write_results(directory, rows)
    variant_rows = variants_lib.collect([v.strip() for v in _VARIANT_ROOTS.value if v.strip()])
  except (FileNotFoundError, ValueError) as e:
    cli.fail("report", e)
  output = _output_path()
  cost = markdown.read_json_lines(_INFERENCE_COST.value)
  contents = dict(quickstart=int(bool(quickstart_rows)), seed_runs=len(seed_dirs),
                  inference_cost=int(bool(cost)))
  if variant_rows:  # Only then: reports from before issue 23 keep their contents line.
    contents["variants"] = len(variant_rows)
  why_not = None if _FORCE.value else refusal(read_contents(output), contents, output)
  if why_not:
    cli.fail("report", why_not)
  summary = seeds_lib.aggregate(tables) if tables else None
  roots = {os.path.dirname(d) for d in seed_dirs}
  reproduce_root = roots.pop() if len(roots) == 1 else ""  # Where reproduce.sh's timing is.
  text = markdown.build(
      quickstart_rows,
      markdown.read_timing(_QUICKSTART_DIR.value) if _QUICKSTART_DIR.value else None,
      summary, markdown.read_timing(reproduce_root) if reproduce_root else None,
      cost, _figures(output, seed_dirs, summary, quickstart_rows),
      command="python -m d3d_tf.report " + " ".join(sys.argv[1:]), seed_dirs=seed_dirs,
      quickstart_data=(results_table.evaluated_on(_QUICKSTART_DIR.value)
                       if quickstart_rows else ""),
      seeds_data=results_table.evaluated_on(seed_dirs[0]) if seed_dirs else "",
      variant_rows=variant_rows, variant_figure=_variant_figure(output, variant_rows))
  os.makedirs(_report_dir(output), exist_ok=True)
  with open(output, "w", encoding="utf-8") as f:
    f.write(contents_line(contents) + "\n" + text)
  print(f"Report written to {output} (built from {_describe(contents)})")


def run():
  """Console-script entry point."""
  cli.run(main, "report")


if __name__ == "__main__":
  run()
