"""scripts/quickstart.sh's rerun rules, with a stand-in `python` whose stages only make outputs.

A stage is kept only when it was made with the flags asked for now (and from the same inputs);
kept stages keep the seconds measured when they were made.
"""

import json
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Stands in for `python -m <stage module>`: logs the call and writes the file the script checks.
FAKE_PYTHON = """#!/usr/bin/env bash
if [ "$1" != "-m" ]; then exec {real} "$@"; fi
module=$2; shift 2
echo "$module $*" >> "$FAKE_LOG"
value() {{ for a in "$@"; do case $a in --$name=*) echo "${{a#--$name=}}";; esac; done; }}
case $module in
  tfrecords_tools.make_synthetic) name=output_dir; d=$(value "$@")
    mkdir -p "$d/records"; echo {{}} > "$d/records/summary.json"
    touch "$d/records/test-00000-of-00001.tfrecord" ;;
  d3d_tf.train) name=model_dir; d=$(value "$@"); mkdir -p "$d"; echo {{}} > "$d/final_metrics.json" ;;
  d3d_tf.evaluate) name=output_dir; d=$(value "$@"); mkdir -p "$d"; echo {{}} > "$d/report.json" ;;
  d3d_tf.export) name=export_base; d=$(value "$@"); mkdir -p "$d/d3d/1"
    touch "$d/d3d/1/saved_model.pb" ;;
esac
"""


# For the scripts that extend a finished reproduce.sh root: the stand-in trainer also leaves the
# student file that marks a finished run, and the stand-in probe its probe.json.
ROOT_SCRIPT_PYTHON = FAKE_PYTHON.replace(
    'echo {{}} > "$d/final_metrics.json" ;;',
    'echo {{}} > "$d/final_metrics.json"; touch "$d/student.keras" ;;\n'
    '  d3d_tf.probe) name=output_dir; d=$(value "$@"); mkdir -p "$d"; echo {{}} > "$d/probe.json" ;;')


def fake_reproduce_root(tmp_path, seeds=(1, 2)):
  """A finished reproduce.sh root of the unlabelled variant, with empty stand-in files."""
  root = tmp_path / "unlabelled"
  for seed in seeds:
    for stream in ("rgb", "d3d", "flow"):
      run = root / f"seed_{seed}" / stream
      run.mkdir(parents=True)
      (run / "student.keras").touch()
      (run / "flags.txt").write_text(f"--stream={stream}\n")
    two_stream = root / f"seed_{seed}" / "eval" / "two_stream"
    two_stream.mkdir(parents=True)
    (two_stream / "report.json").write_text("{}")
  (root / "data" / "records").mkdir(parents=True)
  (root / "data" / "records" / "test-00000-of-00001.tfrecord").touch()
  (root / "variant.json").write_text(json.dumps(
      {"name": "unlabelled", "data_flagfile": "configs/synthetic_unlabelled_data.flags"}))
  return root


def run_root_script(tmp_path, script, root, **env):
  """Runs scripts/`script` on `root` with the stand-in python; (result, logged calls)."""
  bin_dir = tmp_path / "bin"
  bin_dir.mkdir(exist_ok=True)
  fake = bin_dir / "python"
  fake.write_text(ROOT_SCRIPT_PYTHON.format(real=sys.executable))
  fake.chmod(0o755)
  log = tmp_path / "calls.log"
  log.write_text("")
  result = subprocess.run(
      ["bash", os.path.join(REPO, "scripts", script)],
      env=dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}", FAKE_LOG=str(log),
               ROOT=str(root), **env),
      capture_output=True, text=True, timeout=120, check=False)
  return result, log.read_text().splitlines()


@pytest.fixture
def quickstart(tmp_path):
  bin_dir = tmp_path / "bin"
  bin_dir.mkdir()
  fake = bin_dir / "python"
  fake.write_text(FAKE_PYTHON.format(real=sys.executable))
  fake.chmod(0o755)
  log = tmp_path / "calls.log"
  run_dir = tmp_path / "run"

  def run(*args, **env):
    log.write_text("")
    result = subprocess.run(
        ["bash", os.path.join(REPO, "scripts", "quickstart.sh"), *args],
        env=dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}", FAKE_LOG=str(log),
                 RUN=str(run_dir), **env),
        capture_output=True, text=True, timeout=120)
    calls = [line.split()[0] for line in log.read_text().splitlines()]
    return result, calls

  return run, run_dir


def _timing(run_dir):
  with open(run_dir / "timing.json") as f:
    return {row["stage"]: row for row in json.load(f)["stages"]}


def test_same_settings_keep_every_stage_and_its_measured_time(quickstart):
  run, run_dir = quickstart
  result, calls = run()
  assert result.returncode == 0, result.stderr
  assert calls.count("d3d_tf.train") == 3 and calls.count("d3d_tf.evaluate") == 2
  evaluate_args = (run_dir / "eval" / "two_stream" / ".made_with").read_text()
  assert "--num_frames" not in evaluate_args and "--crop_size" not in evaluate_args
  timing_path = run_dir / "timing.json"
  timing = json.loads(timing_path.read_text())
  teacher = next(r for r in timing["stages"] if r["stage"].startswith("2/7"))
  teacher["seconds"] = 123  # As if the teacher had taken 123 s to train.
  timing_path.write_text(json.dumps(timing))

  result, calls = run()
  assert result.returncode == 0, result.stderr
  assert calls == ["d3d_tf.report"]
  assert result.stdout.count("kept: ") == 7
  rows = _timing(run_dir)
  assert all(r["kept"] for name, r in rows.items() if not name.startswith("7/7"))
  assert next(r for n, r in rows.items() if n.startswith("2/7"))["seconds"] == 123


def test_other_settings_stop_the_rerun_with_the_difference(quickstart):
  run, run_dir = quickstart
  assert run()[0].returncode == 0
  result, calls = run(SEED="3", TRAIN_FLAGS="--train_steps=500")
  assert result.returncode == 2
  assert calls == []  # The data are the same and kept; the teacher differs: nothing trains.
  assert "then: --seed=0" in result.stderr and "now:  --seed=3" in result.stderr
  assert "now:  --train_steps=500" in result.stderr and "--fresh" in result.stderr
  assert "kept: " in result.stdout and f"{run_dir}/flow" in result.stderr


def test_a_redone_teacher_is_not_silently_kept_downstream(quickstart):
  run, run_dir = quickstart
  assert run()[0].returncode == 0
  for name in os.listdir(run_dir / "flow"):
    os.remove(run_dir / "flow" / name)
  result, calls = run()
  assert calls == ["d3d_tf.train"]  # The teacher again; then the D3D student refuses.
  assert result.returncode == 2
  assert f"{run_dir}/d3d exists but was made with other settings" in result.stderr
  assert "## made at" in result.stderr


def test_fresh_redoes_everything(quickstart):
  run, _ = quickstart
  assert run()[0].returncode == 0
  result, calls = run("--fresh", SEED="3")
  assert result.returncode == 0, result.stderr
  assert calls.count("d3d_tf.train") == 3
