r"""Exports a trained D3D/S3D-G RGB classifier as a TF Serving SavedModel.

Writes `<export_base>/<name>/<version>/` with signatures `serving_default` (uint8 frames
[batch, T, H, W, 3]) and `predict_jpeg` (string JPEG frames [batch, T]), the class names
baked in, and TF Serving warm-up requests in `assets.extra/`. The clip geometry (crop, centre
crop fraction, frames) is the one the model was trained with, stored in the `.keras` file; the
flags override it, and say so. See docs/SERVING.md.

Usage:
  python -m d3d_tf.export \
    --model=/tmp/d3d/student.keras \
    --export_base=/tmp/models --name=d3d --version=1 \
    [--label_map=/tmp/d3d/label_map.txt] [--quantize=float16]
"""

from absl import flags

from d3d_tf.common import cli

_MODEL = flags.DEFINE_string("model", None, "Trained classifier, a .keras file.")
_LABEL_MAP = flags.DEFINE_string(
    "label_map", None, "Label map; default: the class names the model stores, else "
    "label_map.txt beside --model.")
_EXPORT_BASE = flags.DEFINE_string("export_base", None, "Model repository root.")
_NAME = flags.DEFINE_string("name", "d3d", "Model name (directory and served name).")
_VERSION = flags.DEFINE_integer("version", 1, "Version directory (positive integer).",
                                lower_bound=1)
_CROP_SIZE = flags.DEFINE_integer(
    "crop_size", None, "Model input side the graph resizes to; default: the model's.",
    lower_bound=1)
_CROP_FRACTION = flags.DEFINE_float(
    "crop_fraction", None, "Centre crop side / short side; default: the model's.",
    lower_bound=0.01, upper_bound=1.0)
_NUM_FRAMES = flags.DEFINE_integer(
    "num_frames", None, "Frames per clip clients should send (metadata, warm-up shape); "
    "default: the model's.", lower_bound=1)
_TOP_K = flags.DEFINE_integer("top_k", 5, "Top classes returned.", lower_bound=1)
_QUANTIZE = flags.DEFINE_enum("quantize", "none", ["none", "float16"],
                              "float16: store weights in half precision (compute in float32).")
_OVERWRITE = flags.DEFINE_bool("overwrite", False, "Replace an existing version directory.")

flags.mark_flags_as_required(["model", "export_base"])


def main(argv):
  cli.no_arguments(argv, "export")
  cli.quiet_tensorflow()
  from d3d_tf.serving import export_lib  # pylint: disable=g-import-not-at-top  (TF: after flags)
  notes = []
  try:
    path = export_lib.export_from_files(
        _MODEL.value, _LABEL_MAP.value, _EXPORT_BASE.value, _NAME.value, _VERSION.value,
        crop_size=_CROP_SIZE.value, crop_fraction=_CROP_FRACTION.value,
        num_frames=_NUM_FRAMES.value, top_k=_TOP_K.value, quantize=_QUANTIZE.value,
        overwrite=_OVERWRITE.value, notes=notes)
  except (FileNotFoundError, FileExistsError, ValueError) as e:
    cli.fail("export", e)
  for note in notes:
    print(f"note: {note}")
  geometry = export_lib.read_geometry(path)
  print(f"Exported SavedModel to {path} (clips: {geometry.describe()})")


def run():
  """Console-script entry point."""
  cli.run(main, "export")


if __name__ == "__main__":
  run()
