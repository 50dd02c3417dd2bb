"""The "When does D3D help?" section: one row per variant, read from runs or transcribed files."""

import json
import os
import subprocess
import sys

import pytest

from d3d_tf.reporting import plots
from d3d_tf.reporting import seeds
from d3d_tf.reporting import variants
from test_results_table import write_run  # pylint: disable=g-bad-import-order

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _variant_root(root, d3d_values, probe=True):
  for i, d3d in enumerate(d3d_values):
    write_run(os.path.join(root, f"seed_{i + 1}"), 0.5, 0.9, 0.85, d3d, 0.9)
  with open(os.path.join(root, "variant.json"), "w") as f:
    json.dump(dict(name="shortcut", data_flagfile="configs/synthetic_shortcut_data.flags",
                   command="DATA_FLAGFILE=... bash scripts/reproduce.sh"), f)
  if probe:
    os.makedirs(os.path.join(root, "probe"))
    with open(os.path.join(root, "probe", "probe.json"), "w") as f:
      json.dump({name: {"Mixed_3c": {"epe": epe}} for name, epe in
                 (("rgb", 0.5), ("d3d", 0.4), ("flow", 0.2), ("random_init", 0.6))}, f)
  return root


def test_row_from_a_reproduce_root(tmp_path):
  row = variants.from_root(_variant_root(str(tmp_path / "v"), (0.6, 0.65, 0.7)))
  assert row["name"] == "shortcut" and row["data"] == "configs/synthetic_shortcut_data.flags"
  assert row["difference"]["mean"] == pytest.approx(0.15)
  assert row["probe"] == dict(RGB=0.5, D3D=0.4, flow=0.2, random=0.6)
  low, high = seeds.t_interval(row["difference"])
  assert 0 < low < 0.15 < high  # t(2) = 4.30 x 0.05 / sqrt(3).
  assert variants.finding(row) == "D3D beats RGB beyond seed noise (3 seeds)"
  line = variants.table([row]).splitlines()[2]
  assert line.startswith("| shortcut | 3 | 50.0 ± 0.0 | 65.0 ± 5.0 | 90.0 ± 0.0 | 85.0 ± 0.0 |")
  assert "+15.0 [" in line and line.endswith("| 0.500 / 0.400 / 0.200 / 0.600 |")


def test_a_transcribed_root_gives_the_root_s_row(tmp_path):
  root = _variant_root(str(tmp_path / "v"), (0.6, 0.65, 0.7))
  spec = variants.transcribe(root, "configs/x.flags; 10 steps", "the runs of today")
  assert spec["seeds"] == ["seed_1", "seed_2", "seed_3"] and spec["top1"]["D3D"] == [0.6, 0.65, 0.7]
  path = tmp_path / "v.json"
  path.write_text(json.dumps(spec))
  row, direct = variants.from_file(str(path)), variants.from_root(root)
  assert row["source"] == "the runs of today" and row["data"] == "configs/x.flags; 10 steps"
  assert variants.table([row]) == variants.table([direct])


def test_without_a_probe_the_column_says_not_run(tmp_path):
  row = variants.from_root(_variant_root(str(tmp_path / "v"), (0.45, 0.55), probe=False))
  assert variants.table([row]).splitlines()[2].endswith("| not run |")
  assert "not shown to differ" in variants.finding(row)
  with pytest.raises(FileNotFoundError, match="--variant_roots"):
    variants.from_root(str(tmp_path / "empty"))


def test_the_committed_fair_test_file_gives_the_committed_interval():
  # docs/REPRODUCTION.md (2026-12-01): -3.2 points, sd 5.1, 95% t-interval [-9.6, +3.2].
  row = variants.from_file(os.path.join(REPO, "docs", "variants", "fair_test.json"))
  d = row["difference"]
  assert round(100 * d["mean"], 1) == -3.2 and round(100 * d["std"], 1) == 5.1
  assert [round(100 * x, 1) for x in seeds.t_interval(d)] == [-9.6, 3.2]
  line = variants.table([row]).splitlines()[2]
  assert ("| 80.9 ± 3.8 | 77.7 ± 3.1 | 100.0 ± 0.0 | 99.9 ± 0.1 | -3.2 [-9.6, +3.2] "
          "| 0.991 / 0.986 / 0.873 / 1.182 |") in line


def test_the_committed_warm_start_file_gives_the_committed_interval():
  # LAB_NOTEBOOK.md, 2026-12-03: D3D warm - RGB continued +38.9 [+33.9, +43.8], 5 seeds.
  row = variants.from_file(os.path.join(REPO, "docs", "variants", "unlabelled_warm.json"))
  assert row["name"] == "unlabelled + warm start" and len(row["difference"]["values"]) == 5
  assert round(100 * row["difference"]["mean"], 1) == 38.9
  assert [round(100 * x, 1) for x in seeds.t_interval(row["difference"])] == [33.9, 43.8]
  assert variants.finding(row).startswith("D3D beats RGB beyond seed noise")
  assert variants.table([row]).splitlines()[2].endswith("| 1.083 / 0.947 / 0.799 / 1.143 |")


def test_report_cli_writes_the_section(tmp_path):
  quick = write_run(str(tmp_path / "quick"), 0.3, 0.8, 0.7, 0.5, 0.75)
  root = _variant_root(str(tmp_path / "v"), (0.6, 0.65, 0.7))
  fair = os.path.join(REPO, "docs", "variants", "fair_test.json")
  output = tmp_path / "REPRODUCTION.md"
  result = subprocess.run(
      [sys.executable, "-m", "d3d_tf.report", f"--quickstart_dir={quick}", "--seed_dirs=",
       "--inference_cost=", f"--variant_roots={fair},{root}", f"--output={output}"],
      env=dict(os.environ, PYTHONPATH=REPO), capture_output=True, text=True, timeout=300,
      check=False)
  assert result.returncode == 0, result.stderr
  text = output.read_text()
  assert '"variants": 2' in text.splitlines()[0]
  section = text.split("## 3. When does D3D help?")[1].split("## 4.")[0]
  assert "| fair test | 5 |" in section and "| shortcut | 3 |" in section
  assert "](figures/when_d3d_helps.png)" in section
  assert (tmp_path / "figures" / "when_d3d_helps.png").stat().st_size > 10_000
  missing = subprocess.run(
      [sys.executable, "-m", "d3d_tf.report", f"--quickstart_dir={quick}", "--seed_dirs=",
       "--inference_cost=", f"--variant_roots={tmp_path / 'nothing'}",
       f"--output={tmp_path / 'other.md'}"],
      env=dict(os.environ, PYTHONPATH=REPO), capture_output=True, text=True, timeout=300,
      check=False)
  assert missing.returncode == 2 and "--variant_roots" in missing.stderr


# A report as d3d_tf.report wrote it before the variants section existed (the committed one has the section now).
OLD_REPORT = "\n".join([
    "# Reproduction report", "", "## 1. Quickstart (README command 1, seed 0)", "", "table", "",
    "## 2. Runs that differ only in their seed", "", "seeds", "",
    "## 3. The paper's numbers (theirs, not ours)", "", "paper", "",
    "## 4. Inference cost on real clips: D3D against two-stream", "", "cost", "",
    "## 5. Plots", "", "![Training curves](figures/training_curves.png)", ""])


def test_splice_inserts_once_renumbers_and_keeps_the_rest():
  report = OLD_REPORT
  once = variants.splice(report, ["first"])
  headings = [line for line in once.splitlines() if line.startswith("## ")]
  assert headings[2:4] == ["## 3. When does D3D help?",
                           "## 4. The paper's numbers (theirs, not ours)"]
  assert len(headings) == len([l for l in report.splitlines() if l.startswith("## ")]) + 1
  twice = variants.splice(once, ["second", ""])
  assert "first" not in twice.split("## 3. When")[1].split("## 4.")[0] and "second" in twice
  assert twice.split("## 4.")[1] == once.split("## 4.")[1]
  assert twice.split("## 3.")[0] == report.split("## 3.")[0]


def test_variants_only_rewrites_just_the_section(tmp_path):
  output = tmp_path / "REPRODUCTION.md"
  output.write_text('<!-- d3d_tf.report built from: {"inference_cost": 1, "quickstart": 1, '
                    '"seed_runs": 5} -->\n' + OLD_REPORT)
  root = _variant_root(str(tmp_path / "v"), (0.6, 0.65, 0.7))
  result = subprocess.run(
      [sys.executable, "-m", "d3d_tf.report", "--variants_only", f"--variant_roots={root}",
       f"--output={output}"], env=dict(os.environ, PYTHONPATH=REPO), capture_output=True,
      text=True, timeout=300, check=False)
  assert result.returncode == 0, result.stderr
  text = output.read_text()
  assert '"variants": 1' in text.splitlines()[0] and '"seed_runs": 5' in text.splitlines()[0]
  assert "| shortcut | 3 |" in text and "--variants_only" in text
  assert text.split("\n", 1)[1].split("## 3.")[0] == OLD_REPORT.split("## 3.")[0]
  assert "## 6. Plots" in text and "D3D beats RGB beyond seed noise on: shortcut." in text
  assert "](figures/when_d3d_helps.png)" in text.split("## 3.")[1].split("## 4.")[0]
  assert (tmp_path / "figures" / "when_d3d_helps.png").is_file()


def test_a_probe_of_several_seeds_shows_mean_and_sd(tmp_path):
  spec = dict(name="warm", source="today", top1=dict(RGB=[0.3, 0.4], D3D=[0.6, 0.8]),
              probe=dict(rgb={"Mixed_3c": {"epe": [1.1, 1.2, 1.0]}},
                         d3d={"Mixed_3c": {"epe": [0.9]}}, flow={"Mixed_3c": {"epe": 0.8}}))
  path = tmp_path / "warm.json"
  path.write_text(json.dumps(spec))
  row = variants.from_file(str(path))
  assert variants.table([row]).splitlines()[2].endswith(
      "| 1.100 ± 0.100 (3 seeds) / 0.900 / 0.800 / not run |")


def test_the_committed_teacher_control_files_pair_with_the_rerun():
  # LAB_NOTEBOOK.md, 2026-12-04: flow-teacher minus RGB-teacher D3D +1.7 [-6.6, +10.0], 5 seeds.
  rerun, control = (variants.from_file(os.path.join(REPO, "docs", "variants", name))
                    for name in ("unlabelled_warm_rerun.json", "unlabelled_warm_rgb_teacher.json"))
  assert rerun["top1"]["RGB"]["values"] == control["top1"]["RGB"]["values"]
  flow_minus_rgb_teacher = seeds.stats([b - c for b, c in zip(rerun["top1"]["D3D"]["values"],
                                                               control["top1"]["D3D"]["values"])])
  assert round(100 * flow_minus_rgb_teacher["mean"], 1) == 1.7
  assert [round(100 * x, 1) for x in seeds.t_interval(flow_minus_rgb_teacher)] == [-6.6, 10.0]
  assert "(5 seeds)" in variants.table([control]).splitlines()[2]


def test_the_committed_matched_teacher_files_give_the_documented_interval():
  # LAB_NOTEBOOK.md, 2026-12-06 (later): flow-teacher minus matched-RGB-teacher D3D
  # -0.7 [-5.5, +4.2], 5 seeds; the same RGB baselines, flow teachers and two-stream in both rows.
  flow, control = (variants.from_file(os.path.join(REPO, "docs", "variants", name))
                   for name in ("capacity_unlabelled.json", "capacity_unlabelled_rgb_teacher.json"))
  for column in ("RGB", "flow", "two-stream"):
    assert flow["top1"][column]["values"] == control["top1"][column]["values"]
  difference = seeds.stats([f - c for f, c in zip(flow["top1"]["D3D"]["values"],
                                                  control["top1"]["D3D"]["values"])])
  assert round(100 * difference["mean"], 1) == -0.7
  assert [round(100 * x, 1) for x in seeds.t_interval(difference)] == [-5.5, 4.2]
  assert flow["probe"]["RGB"] == control["probe"]["RGB"]


def test_the_picture_draws_unprobed_and_one_seed_rows(tmp_path):
  rows = [variants.from_root(_variant_root(str(tmp_path / "a"), (0.6, 0.65, 0.7))),
          variants.from_root(_variant_root(str(tmp_path / "b"), (0.45,), probe=False))]
  path = plots.variant_gains(str(tmp_path / "fig" / "v.png"), rows)
  assert os.path.getsize(path) > 10_000


def test_a_refused_variants_only_run_leaves_the_picture_as_it_was(tmp_path):
  output = tmp_path / "REPRODUCTION.md"
  output.write_text('<!-- d3d_tf.report built from: {"quickstart": 1, "seed_runs": 5} -->\n'
                    + OLD_REPORT)
  roots = [_variant_root(str(tmp_path / name), (0.6, 0.65, 0.7)) for name in ("a", "b")]
  def variants_only(*roots_given):
    return subprocess.run(
        [sys.executable, "-m", "d3d_tf.report", "--variants_only",
         f"--variant_roots={','.join(roots_given)}", f"--output={output}"],
        env=dict(os.environ, PYTHONPATH=REPO), capture_output=True, text=True, timeout=300,
        check=False)
  assert variants_only(*roots).returncode == 0
  picture = tmp_path / "figures" / "when_d3d_helps.png"
  before = picture.read_bytes()
  refused = variants_only(roots[0])
  assert refused.returncode == 2 and "--force" in refused.stderr
  assert picture.read_bytes() == before
