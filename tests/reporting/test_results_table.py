"""The results table, seed statistics and the reproduction report, on hand-made eval reports."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from d3d_tf.reporting import markdown
from d3d_tf.reporting import results_table
from d3d_tf.reporting import seeds


def _row(model, top1, top5, clips_per_second, flow_seconds=None):
  return dict(model=model, top1=top1, top5=top5, clips_per_second=clips_per_second,
              flow_seconds_per_video=flow_seconds)


def write_run(run_dir, rgb, flow, two_stream, d3d, d3d_flow, num_clips=2, flow_seconds=0.5,
              eval_files="data/records/test-*.tfrecord", num_videos=300):
  """Two evaluation reports as quickstart.sh writes them (member rows, then the fusion)."""
  protocol = dict(num_clips=num_clips, num_crops=1)
  reports = {
      results_table.TWO_STREAM: [_row("rgb/student.keras", rgb, 0.5, 4.0),
                                 _row("flow/student.keras", flow, 0.9, 4.0, flow_seconds),
                                 _row("ensemble(1,1)", two_stream, 0.95, 2.0, flow_seconds)],
      results_table.D3D_FLOW: [_row("d3d/student.keras", d3d, 0.6, 4.0),
                               _row("flow/student.keras", flow, 0.9, 4.0, flow_seconds),
                               _row("ensemble(1,1)", d3d_flow, 0.96, 2.0, flow_seconds)]}
  for name, rows in reports.items():
    os.makedirs(os.path.join(run_dir, name), exist_ok=True)
    with open(os.path.join(run_dir, name, "report.json"), "w") as f:
      json.dump(dict(protocol=protocol, rows=rows, eval_files=eval_files,
                     summary=dict(rows[-1], num_videos=num_videos)), f)
  return run_dir


def test_collect_rows_costs_and_gap(tmp_path):
  run = write_run(str(tmp_path), rgb=0.3, flow=0.8, two_stream=0.7, d3d=0.5, d3d_flow=0.75)
  rows = results_table.collect(run)
  assert [r["model"] for r in rows] == ["RGB", "flow", "two-stream (RGB + flow)", "D3D",
                                        "D3D + flow"]
  assert [r["needs_flow"] for r in rows] == [False, True, True, False, True]
  by = {r["model"]: r for r in rows}
  # 2 views at 4 clips/s = 0.5 s of model time; flow adds its 0.5 s per video.
  assert by["RGB"]["seconds_per_video"] == pytest.approx(0.5)
  assert by["flow"]["seconds_per_video"] == pytest.approx(1.0)
  assert by["two-stream (RGB + flow)"]["seconds_per_video"] == pytest.approx(1.5)
  # D3D closes (0.5 - 0.3) / (0.7 - 0.3) of the gap.
  assert results_table.gap_closed(rows) == pytest.approx(0.5)
  path = results_table.write_results(run, rows)
  saved = json.load(open(path))
  assert saved["gap_closed"] == pytest.approx(0.5) and len(saved["rows"]) == 5
  assert saved["versus_rgb"] == ("D3D is 20.0 points above RGB; "
                                 "two-stream is 40.0 points above RGB.")
  below = [dict(r, top1=0.2663) if r["model"] == "D3D" else r for r in rows]
  assert results_table.versus_rgb(below).startswith("D3D is 3.4 points below RGB;")
  # Rounded as printed: 0.123456 would read as noise in the JSON.
  noisy = [dict(r, top1=r["top1"] + 1.23456e-5, seconds_per_video=0.1234567) for r in rows]
  saved = json.load(open(results_table.write_results(run, noisy)))
  assert saved["rows"][0]["top1"] == 0.3 and saved["rows"][0]["seconds_per_video"] == 0.123
  table = results_table.to_markdown(rows)
  assert "| D3D | no | 50.0 | 60.0 | 0.500 |" in table
  assert results_table.evaluated_on(run) == "300 videos of `data/records/test-*.tfrecord`"


def test_missing_report_names_the_file_and_the_fix(tmp_path):
  with pytest.raises(FileNotFoundError, match="two_stream.*quickstart"):
    results_table.collect(str(tmp_path))


def test_seed_statistics_and_verdicts(tmp_path):
  tables = [results_table.collect(write_run(str(tmp_path / f"s{i}"), rgb=0.3, flow=0.8,
                                            two_stream=0.7, d3d=d, d3d_flow=0.75))
            for i, d in enumerate((0.5, 0.55, 0.45))]
  summary = seeds.aggregate(tables)
  diff = summary["d3d_minus_rgb_top1"]
  assert diff["mean"] == pytest.approx(0.2)
  assert diff["std"] == pytest.approx(np.std([0.2, 0.25, 0.15], ddof=1))
  assert summary["d3d_beats_rgb_seeds"] == 3
  assert summary["gap_closed"]["mean"] == pytest.approx(0.5)
  assert summary["two_stream_minus_rgb_top1"]["mean"] == pytest.approx(0.4)
  assert "larger than seed noise" in seeds.verdict(summary)
  noisy = [results_table.collect(write_run(str(tmp_path / f"n{i}"), rgb=0.3, flow=0.8,
                                           two_stream=0.7, d3d=d, d3d_flow=0.75))
           for i, d in enumerate((0.2, 0.4, 0.3))]
  assert "not shown to exceed seed noise" in seeds.verdict(seeds.aggregate(noisy))


def test_report_cli_writes_markdown_figures_and_results(tmp_path):
  quick = write_run(str(tmp_path / "quick"), 0.3, 0.8, 0.7, 0.5, 0.75)
  for i, d in enumerate((0.5, 0.55, 0.45)):
    write_run(str(tmp_path / "reproduce" / f"seed_{i}"), 0.3, 0.8, 0.7, d, 0.75)
  cost = tmp_path / "cost.jsonl"
  lines = [dict(name="clip_frames", value=32, unit="frames"),
           dict(name="clip_size", value=224, unit="pixels")]
  for video in ("a.mp4", "b.mp4"):
    for part, value in (("decode", 0.1), ("flow_tvl1", 90.0), ("flow_dis", 1.0),
                        ("rgb_model", 1.0), ("flow_model_dis", 1.0), ("d3d", 1.1),
                        ("two_stream_tvl1", 92.1), ("two_stream_dis", 3.1)):
      lines.append(dict(name=f"{video}/{part}_seconds", value=value, unit="s"))
  lines += [dict(name="d3d_seconds_per_video", value=1.1, unit="s"),
            dict(name="two_stream_tvl1_seconds_per_video", value=92.1, unit="s"),
            dict(name="two_stream_dis_seconds_per_video", value=3.1, unit="s"),
            dict(name="two_stream_tvl1_over_d3d", value=83.7, unit="x"),
            dict(name="two_stream_dis_over_d3d", value=2.8, unit="x")]
  cost.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
  output = tmp_path / "docs" / "REPRODUCTION.md"
  result = subprocess.run(
      [sys.executable, "-m", "d3d_tf.report", f"--quickstart_dir={quick}",
       f"--seed_dirs={tmp_path / 'reproduce' / 'seed_*'}", f"--inference_cost={cost}",
       f"--output={output}"], capture_output=True, text=True, check=False)
  assert result.returncode == 0, result.stderr
  text = output.read_text()
  assert "| D3D | no | 50.0 ± 5.0 |" in text
  assert "**83.7x** D3D" in text
  assert "75.9" in text and "theirs" in text
  assert "larger than seed noise" in text
  assert "Measured on 300 videos of `data/records/test-*.tfrecord`." in text
  assert "Each measured on 300 videos of" in text
  assert (tmp_path / "docs" / "figures" / "accuracy_cost.png").stat().st_size > 1000
  assert os.path.isfile(tmp_path / "reproduce" / "seed_1" / "results.json")
  assert "D3D is 20.0 points above RGB; two-stream is 40.0 points above RGB." in result.stdout


def test_report_cli_missing_run_exits_2_with_the_fix(tmp_path):
  result = subprocess.run(
      [sys.executable, "-m", "d3d_tf.report", f"--quickstart_dir={tmp_path}", "--table_only"],
      capture_output=True, text=True, check=False)
  assert result.returncode == 2
  assert "scripts/quickstart.sh" in result.stderr


def test_read_json_lines_and_timing(tmp_path):
  assert markdown.read_json_lines(str(tmp_path / "absent")) == {}
  (tmp_path / "timing.json").write_text(json.dumps(dict(seconds=600, command="x")))
  assert markdown.read_timing(str(tmp_path))["seconds"] == 600


def test_minutes_names_seeds_kept_from_an_earlier_run():
  minutes = markdown._minutes  # pylint: disable=protected-access
  earlier = dict(seconds=2454, load_average_at_end=[1.7])
  text = minutes(dict(seconds=1680, seeds_kept=[1, 2, 3], earlier=earlier))
  assert text == ("28.0 min; seeds 1, 2, 3 were kept from an earlier run, which took 40.9 min "
                  "(1-minute load average at the end: 1.7)")
  assert minutes(dict(seconds=60)) == "1.0 min"
