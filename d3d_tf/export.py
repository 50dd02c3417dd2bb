r"""Exports a trained D3D/S3D-G RGB classifier as a TF Serving SavedModel.

Writes `<export_base>/<name>/<version>/` with signatures `serving_default` (uint8 frames
[batch, T, H, W, 3]) and `predict_jpeg` (string JPEG frames [batch, T]), the class names
baked in, and TF Serving warm-up requests in `assets.extra/`. The clip geometry (crop, centre
crop fraction, frames) is the one the model was trained with, stored in the `.keras` file; the
flags override it, and say so. See docs/SERVING.md. The flags are `ExportConfig`'s fields
(d3d_tf/serving/export_config.py).

Usage:
  python -m d3d_tf.export \
    --model=/tmp/d3d/student.keras \
    --export_base=/tmp/models --name=d3d --version=1 \
    [--label_map=/tmp/d3d/label_map.txt] [--quantize=float16]
"""

from d3d_tf.common import cli
from d3d_tf.serving.export_config import ExportConfig

cli.define(ExportConfig)


def main(argv):
  cli.no_arguments(argv, "export")
  config = cli.config(ExportConfig)
  cli.quiet_tensorflow()
  from d3d_tf.serving import export_lib  # pylint: disable=g-import-not-at-top  (TF: after flags)
  notes = []
  try:
    path = export_lib.export_from_files(config, notes=notes)
  except (FileNotFoundError, FileExistsError, ValueError) as e:
    cli.fail("export", e)
  for note in notes:
    print(f"note: {note}")
  geometry = export_lib.read_geometry(path)
  print(f"Exported SavedModel to {path} (clips: {geometry.describe()})")


def run():
  """Console-script entry point."""
  cli.run(main, "export", ExportConfig)


if __name__ == "__main__":
  run()
