"""TrainConfig is the one declaration of d3d_tf.train's flags: help, rules, flags.txt, validate.

No TensorFlow here: the config module and the CLI's flag parsing must not need it.
"""

import dataclasses
import os
import subprocess
import sys

import pytest

from d3d_tf.training import train_config
from d3d_tf.training.train_config import TrainConfig

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BASE = dict(stream="rgb", train_files="data/train-*.tfrecord", model_dir="runs/x")


@pytest.mark.parametrize("values, message", [
    ({"stream": "rgbb"}, "--stream must be one of rgb, flow, d3d; got 'rgbb'."),
    ({"final_endpoint": "Mixed_9z"}, "--final_endpoint must be one of Conv2d_1a_7x7, "),
    ({"train_steps": 0}, "--train_steps must be >= 1; got 0."),
    ({"train_steps": "10"}, "--train_steps must be an integer; got '10'."),
    ({"flip": 1}, "--flip must be a boolean; got 1."),
    ({"label_smoothing": 1.0}, "--label_smoothing must be in [0, 0.999]; got 1.0."),
    ({"lr_boundaries": (5, "a")}, "--lr_boundaries must be comma-separated integers"),
    ({"lr_boundaries": (-1,)}, "--lr_boundaries must be >= 0; got (-1,)."),
    ({"lr_boundaries": (5, 3)}, "--lr_boundaries must increase; got [5, 3]."),
    ({"stream": "d3d"}, "--stream=d3d needs --teacher"),
    ({"train_steps": 5, "checkpoint_every": 2}, "--train_steps (5) must be a multiple of"),
    ({"freeze_until": "Mixed_3c"}, "--reset_head and --freeze_until need --init_from."),
    ({"same_modality_teacher": True}, "--same_modality_teacher needs --teacher."),
    ({"deterministic": True}, "--deterministic needs --seed."),
    ({"uint8_clips": True, "min_area": 0.5}, "--uint8_clips crops crop_size pixels without"),
])
def test_validate_names_the_flag(values, message):
  with pytest.raises(ValueError) as error:
    train_config.validate(TrainConfig(**dict(BASE, **values)))
  assert str(error.value).startswith(message), str(error.value)


def test_valid_configs_pass():
  train_config.validate(TrainConfig(**BASE))
  train_config.validate(TrainConfig(**BASE, lr_boundaries=[60, 70], seed=0, deterministic=True,
                                    init_from="m.keras", freeze_until="Mixed_4f", verbose=0))


def test_every_flag_has_help_and_verbose_is_python_only():
  names = [f.name for f in train_config.flag_fields()]
  assert "verbose" not in names and len(names) == len(dataclasses.fields(TrainConfig)) - 1
  assert all(f.metadata["help"] for f in train_config.flag_fields())
  assert "--verbose" not in TrainConfig(**BASE, verbose=0).to_flagfile()


_ROUND_TRIP = """
import sys
from absl import flags
import d3d_tf.train
flags.FLAGS(["train", "--flagfile=" + sys.argv[1]])
print(repr(d3d_tf.train.config_from_flags()))
assert "tensorflow" not in sys.modules
"""


def test_to_flagfile_parses_back_to_the_same_config(tmp_path):
  config = TrainConfig(**dict(BASE, stream="d3d"), teacher="a,b", lr_boundaries=(3, 5),
                       flip=False, seed=0, deterministic=True, learning_rate=0.003,
                       temperature=1e-6, freeze_until="Mixed_4f", init_from="m.keras",
                       sync_batch_norm=True, verbose=0)
  path = tmp_path / "flags.txt"
  path.write_text(config.to_flagfile())
  result = subprocess.run([sys.executable, "-c", _ROUND_TRIP, str(path)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
  assert result.returncode == 0, result.stderr[-2000:]
  assert result.stdout.strip() == repr(dataclasses.replace(config, verbose=None))


def test_help_lists_choices_and_defaults_without_tensorflow():
  code = ("import sys, runpy; sys.argv = ['train', '--help']\n"
          "try:\n  runpy.run_module('d3d_tf.train', run_name='__main__')\n"
          "except SystemExit:\n  pass\n"
          "assert 'tensorflow' not in sys.modules, 'TensorFlow imported'")
  result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
  assert result.returncode == 0, result.stderr[-2000:]
  out = result.stdout
  for text in ("--stream: <rgb|flow|d3d>", "--optimizer: <sgd|adamw>: Keras optimizer.",
               "Mixed_3c|MaxPool_4a_3x3", "(default: '1000')", "--[no]flip",
               "(a number in the range [0, 0.999])"):
    assert text in out, text
