"""`d3d_tf.report` writes into a run directory unless told otherwise, and never replaces a
report built from more runs without --force."""

import os
import subprocess
import sys

from d3d_tf.reporting import reproduction_report as report
from test_results_table import write_run  # pylint: disable=g-bad-import-order

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _report(*args, cwd):
  return subprocess.run([sys.executable, "-m", "d3d_tf.report", *args], cwd=cwd,
                        env=dict(os.environ, PYTHONPATH=REPO), capture_output=True, text=True,
                        timeout=300, check=False)


def test_refusal_rules():
  full = dict(quickstart=1, seed_runs=5, inference_cost=1)
  assert report.refusal(None, dict(quickstart=1), "r.md") is None  # Nothing to replace.
  assert report.refusal(full, dict(full, seed_runs=6), "r.md") is None
  why = report.refusal(full, dict(quickstart=1, seed_runs=0, inference_cost=0), "r.md")
  assert "5 seed runs" in why and "0 seed runs" in why and "--force" in why
  assert "--force" in report.refusal({}, full, "r.md")  # A file that does not say.


def test_contents_line_round_trips(tmp_path):
  path = tmp_path / "r.md"
  contents = dict(quickstart=1, seed_runs=3, inference_cost=0)
  path.write_text(report.contents_line(contents) + "\n# Reproduction report\n")
  assert report.read_contents(str(path)) == contents
  assert report.read_contents(str(tmp_path / "absent.md")) is None


def test_default_output_is_the_run_dir_and_docs_is_left_alone(tmp_path):
  quick = write_run(str(tmp_path / "quick"), 0.3, 0.8, 0.7, 0.5, 0.75)
  docs = tmp_path / "docs"
  docs.mkdir()
  (docs / "REPRODUCTION.md").write_text("committed\n")
  result = _report(f"--quickstart_dir={quick}", "--seed_dirs=", "--inference_cost=",
                   cwd=str(tmp_path))
  assert result.returncode == 0, result.stderr
  written = tmp_path / "quick" / "report" / "REPRODUCTION.md"
  assert report.read_contents(str(written)) == dict(quickstart=1, seed_runs=0,
                                                    inference_cost=0)
  assert (docs / "REPRODUCTION.md").read_text() == "committed\n"


def test_a_smaller_report_refuses_without_force(tmp_path):
  quick = write_run(str(tmp_path / "quick"), 0.3, 0.8, 0.7, 0.5, 0.75)
  output = tmp_path / "REPRODUCTION.md"
  before = report.contents_line(dict(quickstart=1, seed_runs=5, inference_cost=1)) + "\nold\n"
  output.write_text(before)
  args = (f"--quickstart_dir={quick}", "--seed_dirs=", "--inference_cost=",
          f"--output={output}")
  refused = _report(*args, cwd=str(tmp_path))
  assert refused.returncode == 2
  err = refused.stderr.strip().splitlines()
  assert len(err) == 1 and err[0].startswith("report: error: ") and "--force" in err[0], err
  assert output.read_text() == before
  forced = _report(*args, "--force", cwd=str(tmp_path))
  assert forced.returncode == 0, forced.stderr
  assert report.read_contents(str(output))["seed_runs"] == 0
