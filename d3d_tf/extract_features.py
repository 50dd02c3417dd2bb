r"""Extracts features of every window of many videos with a trained model: one .npz per video.

Usage:
  python -m d3d_tf.extract_features --model=runs/d3d/student.keras --videos=/data/videos \
    --output_dir=/data/features
  python -m d3d_tf.extract_features --model=runs/d3d --records='/data/val-*.tfrecord' \
    --output_dir=/data/features --endpoint=Mixed_4f --keep_time --dtype=float16
  # The same as an Apache Beam pipeline (one video per task, the model loaded once per worker):
  python -m d3d_tf.extract_features --model=runs/d3d --videos=/data/k400/videos \
    --output_dir=/data/k400_features --runner=beam \
    --beam_pipeline_options="--runner=DirectRunner --direct_num_workers=8 \
    --direct_running_mode=multi_processing"

Window i starts at frame i x --window_stride of the (--fps resampled) video and spans the
model's clip (num_frames x stride, stored in the model); only whole windows. Each video's
`<output_dir>/<its path relative to the input folder>.npz` holds `features` [windows, D],
`start_seconds`, `end_seconds`, `fps`, `model` and `endpoint`; manifest.csv lists every video
(windows, seconds covered, status) and failures.csv the ones that gave no window, with the
reason. A rerun skips videos whose .npz exists, so a killed run is finished by running it
again. Bad input (no video, a missing model, an endpoint the model lacks) ends with one line,
`extract_features: error: ...`, and exit code 2.

The flags are `FeaturesConfig`'s fields (d3d_tf/inference/features_config.py).
"""

import sys

from d3d_tf.common import cli
from d3d_tf.inference import features_config

cli.define(features_config.FeaturesConfig)

_TOOL = "extract_features"


def main(argv):
  cli.no_arguments(argv, _TOOL)
  config = cli.config(features_config.FeaturesConfig)
  cli.prepare_run_dir(_TOOL, lambda: features_config.prepare_output_dir(config))
  cli.quiet_tensorflow()
  from d3d_tf.inference import features_lib  # pylint: disable=g-import-not-at-top  (TF)
  if config.runner == "beam":
    try:
      import apache_beam  # noqa: F401  # pylint: disable=g-import-not-at-top,unused-import
    except ModuleNotFoundError:
      cli.fail(_TOOL, "--runner=beam needs Apache Beam, which is not installed: "
               "pip install -e .[beam]")
  try:
    counts = features_lib.extract(config, check_output_dir=False)
  except (ValueError, FileNotFoundError) as e:
    cli.fail(_TOOL, e)
  print(f"{counts['done']} videos extracted ({counts['windows']} windows), "
        f"{counts['existing']} already there, {counts['failed']} failed "
        f"(see {config.output_dir}/{features_lib.FAILURES})." if counts["failed"] else
        f"{counts['done']} videos extracted ({counts['windows']} windows), "
        f"{counts['existing']} already there.", file=sys.stderr)


def run():
  """Console-script entry point."""
  cli.run(main, _TOOL, features_config.FeaturesConfig)


if __name__ == "__main__":
  run()
