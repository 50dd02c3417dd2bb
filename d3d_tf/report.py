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
  # With the "When does D3D help?" section: one row per variant.
  python -m d3d_tf.report ... \
    --variant_roots=docs/variants/fair_test.json,runs/shortcut --output=docs/REPRODUCTION.md
  # Only that section, into the existing report (the rest kept as it is):
  python -m d3d_tf.report --variants_only --output=docs/REPRODUCTION.md \
    --variant_roots=docs/variants/fair_test.json,runs/shortcut

A report never silently replaces one built from more: its first line records what it was built
from (quickstart, seed runs, inference cost), and a report with less than the file it would
replace stops with what it lacks (exit 2) unless --force. The flags are `ReportConfig`'s
fields (d3d_tf/reporting/report_config.py); the work is d3d_tf/reporting/reproduction_report.py.
"""

import sys

from absl import logging

from d3d_tf.common import cli
from d3d_tf.reporting import reproduction_report
from d3d_tf.reporting.report_config import ReportConfig

cli.define(ReportConfig)


def main(argv):
  cli.no_arguments(argv, "report")
  config = cli.config(ReportConfig)
  logging.set_verbosity(logging.WARNING)  # TensorBoard's event reader logs every file at INFO.
  command = "python -m d3d_tf.report " + " ".join(sys.argv[1:])
  write = (reproduction_report.write_variants_only if config.variants_only
           else reproduction_report.write_report)
  try:
    done = write(config, command)
  except (FileNotFoundError, ValueError) as e:
    cli.fail("report", e)
  if done:
    print(done)


def run():
  """Console-script entry point."""
  cli.run(main, "report", ReportConfig)


if __name__ == "__main__":
  run()
