"""Every command line behaves alike: help exits 0, a bad flag is one line and exit 2, quietly.

`--help` and flag errors must come before TensorFlow is imported (they answer in about a
second, not 15): each run reports whether `tensorflow` was imported when the process exited.
"""

import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

CLIS = {
    "d3d_tf.train": "train",
    "d3d_tf.evaluate": "evaluate",
    "d3d_tf.export": "export",
    "d3d_tf.predict": "predict",
    "d3d_tf.extract_features": "extract_features",
    "d3d_tf.probe": "probe",
    "d3d_tf.report": "report",
    "d3d_tf.convert_weights": "convert_weights",
    "tfrecords_tools.build_tfrecords": "build_tfrecords",
    "tfrecords_tools.make_synthetic": "make_synthetic",
    "tfrecords_tools.inspect": "inspect",
}

# Runs a module as `python -m` would, and says on exit whether TensorFlow was imported.
_RUNNER = """
import atexit, runpy, sys
atexit.register(lambda: print("tensorflow imported" if "tensorflow" in sys.modules
                              else "tensorflow not imported", file=sys.stderr))
module, sys.argv = sys.argv[1], [sys.argv[1]] + sys.argv[2:]
runpy.run_module(module, run_name="__main__", alter_sys=True)
"""


def _run(module, *args, cwd=REPO):
  env = dict(os.environ, PYTHONPATH=REPO)
  env.pop("TF_CPP_MIN_LOG_LEVEL", None)  # The CLIs must be quiet on their own.
  result = subprocess.run([sys.executable, "-c", _RUNNER, module, *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300, check=False)
  lines = result.stderr.strip().splitlines()
  return result, lines[:-1], lines[-1] if lines else ""


@pytest.mark.parametrize("module", sorted(CLIS))
def test_help_exits_0_before_tensorflow(module):
  result, _, tf_note = _run(module, "--helpshort")
  assert result.returncode == 0, result.stderr
  assert "--" in result.stdout + result.stderr  # The flags are listed.
  assert tf_note == "tensorflow not imported"


@pytest.mark.parametrize("module", sorted(CLIS))
def test_bad_flag_is_one_line_exit_2_before_tensorflow(module):
  result, err, tf_note = _run(module, "--no_such_flag_xyz=1")
  assert result.returncode == 2, result.stderr
  assert len(err) == 1, err
  assert err[0].startswith(f"{CLIS[module]}: error: ") and "no_such_flag_xyz" in err[0], err
  assert tf_note == "tensorflow not imported"


def test_bad_input_after_tensorflow_is_one_quiet_line_naming_the_flag(tmp_path):
  pattern = str(tmp_path / "none-*.tfrecord")
  result, err, tf_note = _run("d3d_tf.evaluate", f"--models={tmp_path / 'm.keras'}",
                              f"--eval_files={pattern}", f"--output_dir={tmp_path / 'out'}")
  assert result.returncode == 2
  assert tf_note == "tensorflow imported"
  assert err == [f"evaluate: error: no files match --eval_files={pattern!r}"]


def test_tf_log_flag_brings_tensorflow_logging_back(tmp_path):
  pattern = str(tmp_path / "none-*.tfrecord")
  args = (f"--models={tmp_path / 'm.keras'}", f"--eval_files={pattern}",
          f"--output_dir={tmp_path / 'out'}")
  quiet = _run("d3d_tf.evaluate", *args)[1]
  loud = _run("d3d_tf.evaluate", *args, "--tf_log")[1]
  assert len(loud) > len(quiet) == 1, loud


def test_inspect_on_a_video_file_is_one_line(tmp_path):
  video = tmp_path / "clip.mp4"
  video.write_bytes(os.urandom(4096))
  result, err, _ = _run("tfrecords_tools.inspect", str(video))
  assert result.returncode == 2
  assert "Traceback" not in result.stderr
  assert len(err) == 1 and err[0].startswith("inspect: error: "), err
  assert str(video) in err[0] and "a video file" in err[0] and "build_tfrecords" in err[0]
