"""Every shipped flagfile parses with the training CLI's flags and validators."""

import glob
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIGS = sorted(glob.glob(os.path.join(ROOT, "configs", "*.flags")))

_PARSE = """
import sys
from absl import flags
import d3d_tf.train  # Defines the flags.
for path in sys.argv[1:]:
  flags.FLAGS.unparse_flags()
  flags.FLAGS(["train", "--flagfile=" + path])
  print(path, flags.FLAGS.stream, flags.FLAGS.train_steps)
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
