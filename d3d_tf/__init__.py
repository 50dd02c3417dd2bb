"""d3d_tf: D3D (Distilled 3D Networks) for video action recognition on TF 2 / Keras 3.

D3D (Stroud et al., WACV 2020, https://arxiv.org/abs/1812.08249) trains an RGB S3D-G network to
also predict the logits of a frozen optical-flow teacher, so one RGB model approaches two-stream
accuracy without computing optical flow at test time.

`import d3d_tf` registers the model classes with Keras, so our `.keras` files load with
`keras.models.load_model(path)`. The command-line tools skip that here and import the models
after parsing their flags, so `--help` and flag errors answer before TensorFlow loads.
"""

import os as _os
import sys as _sys

__version__ = "0.1.0"


def _launched_as_cli():
  """`python -m d3d_tf.<tool>` (argv[0] is "-m" while packages import) or a d3d-* script."""
  program = _os.path.basename(_sys.argv[0]) if _sys.argv else ""
  return program == "-m" or program.startswith("d3d-")


if not _launched_as_cli():
  from d3d_tf import models  # noqa: F401  pylint: disable=g-import-not-at-top  (registers)
