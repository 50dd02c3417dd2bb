"""Every shipped flagfile parses with its CLI's flags and passes its validator."""

import glob
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# synthetic*_data.flags are make_synthetic's; every other flagfile is d3d_tf.train's.
DATA_CONFIG = os.path.join(ROOT, "configs", "synthetic_data.flags")
DATA_CONFIGS = sorted(glob.glob(os.path.join(ROOT, "configs", "synthetic*_data.flags")))
CONFIGS = sorted(set(glob.glob(os.path.join(ROOT, "configs", "*.flags"))) - set(DATA_CONFIGS))

_PARSE = """
import sys
from absl import flags
import d3d_tf.train  # Defines the flags.
from d3d_tf.training import train_config
for path in sys.argv[1:]:
  flags.FLAGS.unparse_flags()
  flags.FLAGS(["train", "--flagfile=" + path])
  train_config.validate(d3d_tf.train.config_from_flags())  # What the CLI checks before training.
  print(path, flags.FLAGS.stream, flags.FLAGS.train_steps)
assert "tensorflow" not in sys.modules
"""


def test_all_configs_parse():
  assert len(CONFIGS) >= 8, CONFIGS
  result = subprocess.run([sys.executable, "-c", _PARSE, *CONFIGS], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
  assert result.returncode == 0, result.stderr[-2000:]
  lines = result.stdout.strip().splitlines()
  assert len(lines) == len(CONFIGS)
  streams = {os.path.basename(line.split()[0]): line.split()[1] for line in lines}
  assert streams["synthetic_d3d.flags"] == "d3d" and streams["kinetics400_flow.flags"] == "flow"


_PARSE_DATA = """
import sys
from absl import flags
import tfrecords_tools.make_synthetic  # Defines the flags.
flags.FLAGS(["make_synthetic", "--flagfile=" + sys.argv[1]])
print(flags.FLAGS.clutter, flags.FLAGS.actor_scale, flags.FLAGS.speed, flags.FLAGS.test_per_class,
      flags.FLAGS.appearance_shortcut, flags.FLAGS.unlabelled_per_class, flags.FLAGS.train_per_class)
"""


def _parse_data_config(path):
  result = subprocess.run([sys.executable, "-c", _PARSE_DATA, path], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
  assert result.returncode == 0, result.stderr[-2000:]
  return result.stdout.split()


def test_synthetic_data_configs_parse():
  assert DATA_CONFIG in DATA_CONFIGS and len(DATA_CONFIGS) >= 2, DATA_CONFIGS
  clutter, actor_scale, speed, test_per_class, shortcut, unlabelled, train = _parse_data_config(
      DATA_CONFIG)
  assert clutter == "False" and float(actor_scale) == 2.0 and float(speed) == 2.0
  assert int(test_per_class) > 0 and float(shortcut) == 0.0 and int(unlabelled) == 0
  variants = {os.path.basename(path): _parse_data_config(path)
              for path in DATA_CONFIGS if path != DATA_CONFIG}
  assert float(variants["synthetic_shortcut_data.flags"][4]) > 0, variants
  # The unlabelled variant: as many training clips as the quickstart's, most without labels.
  unlabelled_variant = variants["synthetic_unlabelled_data.flags"]
  assert int(unlabelled_variant[5]) + int(unlabelled_variant[6]) == int(train), unlabelled_variant
  assert int(unlabelled_variant[5]) > int(unlabelled_variant[6]), unlabelled_variant
  assert float(unlabelled_variant[4]) == 0.0, unlabelled_variant
