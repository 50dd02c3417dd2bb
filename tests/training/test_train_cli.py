"""The CLI: one-line errors with exit code 2, SIGKILL-then-relaunch resumes exactly, and a
finished run relaunched from its flags.txt is kept as it was."""

import json
import os
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest

import d3d_tf.models  # noqa: F401  (registers S3DGClassifier for load_model)

from tests.training import tiny_data

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _flagfile(path, values):
  lines = []
  for name, value in values.items():
    lines.append(f"--{name}" if value is True else f"--{name}={value}")
  path.write_text("\n".join(lines) + "\n")
  return str(path)


def _launch(flagfile):
  env = dict(os.environ, PYTHONPATH=REPO)
  env.pop("TF_CPP_MIN_LOG_LEVEL", None)  # The CLI is quiet by itself.
  return subprocess.Popen(
      [sys.executable, "-m", "d3d_tf.train", f"--flagfile={flagfile}"], cwd=REPO, env=env,
      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_missing_files_one_line_exit_2(tmp_path):
  flagfile = _flagfile(tmp_path / "run.flags", {
      "stream": "rgb", "train_files": str(tmp_path / "nothing-*.tfrecord"),
      "model_dir": str(tmp_path / "run")})
  proc = _launch(flagfile)
  _, err = proc.communicate(timeout=120)
  assert proc.returncode == 2
  assert "Traceback" not in err
  assert err.strip() == (  # One line: no TensorFlow logging before it.
      f"train: error: No files match --train_files='{tmp_path / 'nothing-*.tfrecord'}'.")


@pytest.mark.parametrize("values, message", [
    ({"stream": "rgbb"}, "train: error: flag --stream=rgbb: value should be one of <rgb|flow|d3d>"),
    ({"stream": "d3d"}, "train: error: --stream=d3d needs --teacher"),
    ({"stream": "rgb", "verbose": 0}, "train: error: Unknown command line flag 'verbose'"),
    ({"stream": "rgb", "lr_boundaries": "5,3"}, "train: error: --lr_boundaries must increase"),
])
def test_bad_flags_one_line_exit_2(tmp_path, values, message):
  proc = _launch(_flagfile(tmp_path / "bad.flags", {
      "train_files": "x", "model_dir": str(tmp_path / "run"), **values}))
  _, err = proc.communicate(timeout=120)
  assert proc.returncode == 2 and err.startswith(message) and len(err.splitlines()) == 1, err
  assert not (tmp_path / "run").exists()


def _snapshot(model_dir):
  return {name: ((model_dir / name).read_bytes(), (model_dir / name).stat().st_mtime_ns)
          for name in ("flags.txt", "final_metrics.json", "student.keras", "environment.json")}


def test_rerun_from_flags_txt_keeps_the_finished_run(tmp_path):
  data_dir = tiny_data.write_tiny_records(str(tmp_path / "data"))
  model_dir = tmp_path / "run"
  proc = _launch(_flagfile(tmp_path / "run.flags", tiny_data.tiny_flags(
      data_dir, str(model_dir), "rgb", train_steps=1, eval_files="",
      final_endpoint="Mixed_3c")))
  out, err = proc.communicate(timeout=300)
  assert proc.returncode == 0, err[-3000:]
  before = _snapshot(model_dir)
  metrics = json.loads(before["final_metrics.json"][0])
  assert metrics["step"] == 1 and np.isfinite(metrics["loss"])
  # In a pipe: whole lines of the run-wide bar, then the final table (no teacher terms).
  assert "training 1/1 steps 100% | " in out and "\r" not in out, out
  table = out[out.index("Final metrics:"):].splitlines()
  assert table[1].split() == ["step", "1"] and "distill_loss" not in out, out

  rerun = _launch(str(model_dir / "flags.txt"))  # absl's flags_into_string(), as written.
  out, err = rerun.communicate(timeout=300)
  assert rerun.returncode == 0, err[-3000:]
  assert f"Run already finished at step 1 of 1: {model_dir} kept as it was" in out, out
  assert _snapshot(model_dir) == before


@pytest.mark.slow
def test_sigkill_resume_reaches_same_step(tmp_path):
  data_dir = tiny_data.write_tiny_records(str(tmp_path / "data"))
  runs = {}
  for name in ("reference", "killed"):
    values = tiny_data.tiny_flags(data_dir, str(tmp_path / name), "rgb", train_steps=6,
                                  checkpoint_every=2, deterministic=True, eval_files="")
    runs[name] = _flagfile(tmp_path / f"{name}.flags", values)
  reference = _launch(runs["reference"])
  killed = _launch(runs["killed"])
  first = tmp_path / "killed" / "checkpoints" / "checkpoint"
  deadline = time.time() + 240
  while not first.exists() and killed.poll() is None and time.time() < deadline:
    time.sleep(0.05)
  assert killed.poll() is None, "the run ended before its first checkpoint"
  killed.send_signal(signal.SIGKILL)
  killed.communicate()
  assert not (tmp_path / "killed" / "final_metrics.json").exists()

  resumed = _launch(runs["killed"])
  out, err = resumed.communicate(timeout=300)
  assert resumed.returncode == 0, err[-3000:]
  assert "(step 2 of 6)" in out or "(step 4 of 6)" in out, out
  out_ref, err_ref = reference.communicate(timeout=300)
  assert reference.returncode == 0, err_ref[-3000:]

  metrics = {}
  for name in runs:
    with open(tmp_path / name / "final_metrics.json") as f:
      metrics[name] = json.load(f)
  assert metrics["killed"]["step"] == metrics["reference"]["step"] == 6
  assert np.isfinite(metrics["killed"]["loss"])
  # The resumed run continued from its checkpoint (not from scratch) and ends where the
  # uninterrupted run does: same batches (--deterministic), same weights, same loss.
  assert (tmp_path / "killed" / "checkpoints" / "ckpt-6.index").exists()
  assert metrics["killed"]["loss"] == pytest.approx(metrics["reference"]["loss"], rel=1e-3)
  students = {name: keras.saving.load_model(str(tmp_path / name / "student.keras"))
              for name in runs}
  for resumed_w, reference_w in zip(students["killed"].weights, students["reference"].weights):
    np.testing.assert_allclose(resumed_w.numpy(), reference_w.numpy(), rtol=1e-3, atol=1e-5,
                               err_msg=reference_w.path)
