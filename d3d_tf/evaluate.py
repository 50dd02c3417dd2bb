r"""Evaluates a D3D model, or a late-fusion ensemble, on a record split (multi-view protocol).

Per video: K evenly spaced clips x {1, 3} crops, logits averaged (or `--num_clips=0`: the
whole video in one pass). Clips have the geometry the models were trained with (stored in the
`.keras` file); --num_frames, --crop_size and --crop_fraction override it, and say so. Models
fuse by the weighted mean of their softmax probabilities. Prints top-1/top-5/mean per-class
accuracy with the cost (inputs, clips/s, optical-flow seconds per video) and writes
report.json, predictions.csv and confusion_matrix.png. The flags are `EvalConfig`'s fields
(d3d_tf/evaluation/eval_config.py).

Usage:
  # D3D student alone.
  python -m d3d_tf.evaluate --models=/tmp/d3d/student.keras \
    --eval_files='/data/k400/val-*.tfrecord' --num_clips=4 --num_crops=1 \
    --output_dir=/tmp/d3d/eval
  # Two-stream (or D3D + flow): the flow model reads flow from the records.
  python -m d3d_tf.evaluate --models=rgb.keras,flow.keras --fusion_weights=1,1.5 \
    --eval_files='/data/k400/val-*.tfrecord' --output_dir=/tmp/two_stream
"""

from d3d_tf.common import cli
from d3d_tf.evaluation.eval_config import EvalConfig

cli.define(EvalConfig)


def main(argv):
  cli.no_arguments(argv, "evaluate")
  config = cli.config(EvalConfig)
  from d3d_tf.data import host_memory  # pylint: disable=g-import-not-at-top
  host_memory.request_pooled_allocator()  # Before the first TensorFlow op.
  cli.quiet_tensorflow()
  # pylint: disable=g-import-not-at-top  (TensorFlow: after the flags)
  import tensorflow as tf
  from d3d_tf.models import model_files
  from d3d_tf.evaluation import evaluate_lib
  from d3d_tf.evaluation import report
  # pylint: enable=g-import-not-at-top
  if not tf.io.gfile.glob(config.eval_files):
    cli.fail("evaluate", f"no files match --eval_files={config.eval_files!r}")
  try:
    result = evaluate_lib.evaluate(config)
  except (FileNotFoundError, ValueError) as e:
    cli.fail("evaluate", e)
  geometry = {k: result["protocol"][k] for k in ("num_frames", "stride", "crop_size",
                                                 "crop_fraction")}
  print(f"Clips: {model_files.describe(geometry)}; labels: {result['labels_from']}")
  for note in result["geometry_notes"]:
    print(f"note: {note}")
  print(report.format_table(result["rows"]))
  print(f"Reports written to {config.output_dir}")


def run():
  """Console-script entry point."""
  cli.run(main, "evaluate", EvalConfig)


if __name__ == "__main__":
  run()
