r"""Exports a trained D3D/S3D-G classifier: a TF Serving SavedModel, or one ONNX or LiteRT file.

`--format=saved_model` (the default) writes `<export_base>/<name>/<version>/` with signatures
`serving_default` (uint8 frames [batch, T, H, W, 3]) and `predict_jpeg` (string JPEG frames
[batch, T]), the class names baked in, and TF Serving warm-up requests in `assets.extra/`.
`--format=onnx` and `--format=litert` write one file (`--output`) taking uint8 clips already
cropped to the model's size, normalised inside, with outputs `logits` and `probabilities`; the
labels and clip geometry travel with it (ONNX metadata_props; a .tflite.json sidecar). The clip
geometry (crop, centre crop fraction, frames) is the one the model was trained with, stored in
the `.keras` file; the flags override it, and say so. See docs/SERVING.md. The flags are
`ExportConfig`'s fields (d3d_tf/serving/export_config.py).

Usage:
  python -m d3d_tf.export \
    --model=/tmp/d3d/student.keras \
    --export_base=/tmp/models --name=d3d --version=1 \
    [--label_map=/tmp/d3d/label_map.txt] [--quantize=float16]
  python -m d3d_tf.export --model=/tmp/d3d/student.keras --format=onnx --output=d3d.onnx
  python -m d3d_tf.export --model=/tmp/d3d/student.keras --format=litert --output=d3d.tflite \
    --quantize=int8 --representative_files='/data/records/val-*.tfrecord'
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
    if config.format == "saved_model":
      path = export_lib.export_from_files(config, notes=notes)
    else:
      path = export_lib.export_portable(config, notes=notes)
  except (FileNotFoundError, FileExistsError, ValueError) as e:
    cli.fail("export", e)
  for note in notes:
    print(f"note: {note}")
  if config.format == "saved_model":
    geometry = export_lib.read_geometry(path)
    print(f"Exported SavedModel to {path} (clips: {geometry.describe()})")
  else:
    sidecar = " and its .tflite.json sidecar" if config.format == "litert" else ""
    print(f"Exported {config.format} to {path}{sidecar} (quantize: {config.quantize})")


def run():
  """Console-script entry point."""
  cli.run(main, "export", ExportConfig)


if __name__ == "__main__":
  run()
