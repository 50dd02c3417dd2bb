"""Flag parsing shared by the command-line tools: one line per flag error."""

import os
import sys
from typing import List


def parse_flags_or_exit(argv: List[str]) -> List[str]:
  """An `app.run` flags parser whose every flag error is ONE line naming the flag, exit 2.

  absl's default prints two lines and exits 1; our validators' messages already carry the fix.
  """
  from absl import flags  # pylint: disable=g-import-not-at-top
  try:
    return flags.FLAGS(argv)
  except flags.Error as e:
    message = " ".join(str(e).split())
    if isinstance(e, flags.UnrecognizedFlagError):
      message += "; run with --helpshort to list the flags"
    print(f"{os.path.basename(argv[0])}: error: {message}", file=sys.stderr)
    sys.exit(2)
