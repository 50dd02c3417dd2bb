r"""Evaluates a D3D model, or a late-fusion ensemble, on a record split (multi-view protocol).

Per video: K evenly spaced clips x {1, 3} crops, logits averaged (or `--num_clips=0`: the
whole video in one pass). Clips have the geometry the models were trained with (stored in the
`.keras` file); --num_frames, --crop_size and --crop_fraction override it, and say so. Models fuse by the weighted mean of their softmax probabilities.
Prints top-1/top-5/mean per-class accuracy with the cost (inputs, clips/s, optical-flow
seconds per video) and writes report.json, predictions.csv and confusion_matrix.png.

Usage:
  # D3D student alone.
  python -m d3d_tf.evaluate --models=/tmp/d3d/student.keras \
    --eval_files='/data/k400/val-*.tfrecord' --num_clips=4 --num_crops=1 \
    --output_dir=/tmp/d3d/eval
  # Two-stream (or D3D + flow): the flow model reads flow from the records.
  python -m d3d_tf.evaluate --models=rgb.keras,flow.keras --fusion_weights=1,1.5 \
    --eval_files='/data/k400/val-*.tfrecord' --output_dir=/tmp/two_stream
"""

from absl import flags

from d3d_tf.common import cli

_MODELS = flags.DEFINE_list("models", None, "Comma-separated .keras classifiers.")
_EVAL_FILES = flags.DEFINE_string("eval_files", None, "Glob of the split's TFRecords.")
_LABEL_MAP = flags.DEFINE_string(
    "label_map", None, "Label map; default: the class names the first model stores, else "
    "label_map.txt beside it.")
_OUTPUT_DIR = flags.DEFINE_string("output_dir", None, "Where the reports are written.")
_FUSION_WEIGHTS = flags.DEFINE_list(
    "fusion_weights", None, "One weight per model (default all 1).")
_NUM_CLIPS = flags.DEFINE_integer("num_clips", 4, "Clips per video; 0: whole video.",
                                  lower_bound=0)
_NUM_CROPS = flags.DEFINE_enum("num_crops", "1", ["1", "3"], "Spatial crops per clip.")
_NUM_FRAMES = flags.DEFINE_integer(
    "num_frames", None, "Frames per clip; default: the models' (longer windows are allowed).",
    lower_bound=1)
_STRIDE = flags.DEFINE_integer(
    "stride", None, "Temporal stride; only for models that do not store theirs (it must "
    "match training).", lower_bound=1)
_CROP_SIZE = flags.DEFINE_integer("crop_size", None, "Model input side; default: the models'.",
                                  lower_bound=8)
_CROP_FRACTION = flags.DEFINE_float(
    "crop_fraction", None, "Centre crop side / short side; default: the models' (0.875).",
    lower_bound=0.01, upper_bound=1.0)
_BATCH_SIZE = flags.DEFINE_integer("batch_size", None, "Views per batch (default: one video).",
                                   lower_bound=1)

flags.mark_flags_as_required(["models", "eval_files", "output_dir"])


def _weights_ok(values):
  try:
    return values is None or all(float(v) >= 0 for v in values)
  except ValueError:
    return False


flags.register_validator("fusion_weights", _weights_ok,
                         message="--fusion_weights must be non-negative numbers.")


def main(argv):
  cli.no_arguments(argv, "evaluate")
  from d3d_tf.data import host_memory  # pylint: disable=g-import-not-at-top
  host_memory.request_pooled_allocator()  # Before the first TensorFlow op.
  cli.quiet_tensorflow()
  # pylint: disable=g-import-not-at-top  (TensorFlow: after the flags)
  import tensorflow as tf
  from d3d_tf.models import model_files
  from d3d_tf.evaluation import evaluate_lib
  from d3d_tf.evaluation import report
  # pylint: enable=g-import-not-at-top
  if not tf.io.gfile.glob(_EVAL_FILES.value):
    cli.fail("evaluate", f"no files match --eval_files={_EVAL_FILES.value!r}")
  config = evaluate_lib.EvalConfig(
      num_clips=_NUM_CLIPS.value, num_crops=int(_NUM_CROPS.value), num_frames=_NUM_FRAMES.value,
      stride=_STRIDE.value, crop_size=_CROP_SIZE.value, crop_fraction=_CROP_FRACTION.value,
      batch_size=_BATCH_SIZE.value)
  weights = [float(w) for w in _FUSION_WEIGHTS.value] if _FUSION_WEIGHTS.value else None
  try:
    result = evaluate_lib.evaluate(_MODELS.value, _EVAL_FILES.value, _OUTPUT_DIR.value,
                                   _LABEL_MAP.value, weights, config)
  except (FileNotFoundError, ValueError) as e:
    cli.fail("evaluate", e)
  geometry = {k: result["protocol"][k] for k in ("num_frames", "stride", "crop_size",
                                                 "crop_fraction")}
  print(f"Clips: {model_files.describe(geometry)}; labels: {result['labels_from']}")
  for note in result["geometry_notes"]:
    print(f"note: {note}")
  print(report.format_table(result["rows"]))
  print(f"Reports written to {_OUTPUT_DIR.value}")


def run():
  """Console-script entry point."""
  cli.run(main, "evaluate")


if __name__ == "__main__":
  run()
