r"""Classifies videos with a trained D3D model: top-5 labels per video, or per time window.

Usage:
  python -m d3d_tf.predict --model=/tmp/models/d3d --video=clip.mp4
  python -m d3d_tf.predict --model=/tmp/d3d/student.keras --video=/videos/ \
    --sliding_window=2.0 --json
  # Hours of video in bounded memory: overlapping windows, written as they are computed.
  python -m d3d_tf.predict --model=/tmp/d3d/student.keras --video=match.mp4 \
    --sliding_window=4 --window_stride=2 --windows_output=match.jsonl --plot=plots/
`--model` is a SavedModel export (a version directory or the model directory holding
versions) or a `.keras` file. Clip length, stride, crop and labels are the ones the model was
trained with (stored in it); --num_frames and, for `.keras` files, --crop_size and
--crop_fraction override them, and say so. Failures (unreadable video, missing model, no label
map) print one line and exit with code 2. The flags are `PredictConfig`'s fields
(d3d_tf/inference/predict_config.py).
"""

import json
import os
import sys

from d3d_tf.common import cli
from d3d_tf.inference.predict_config import PredictConfig

cli.define(PredictConfig)


def _fail(message: str):
  cli.fail("predict", message)


def main(argv):
  cli.no_arguments(argv, "predict")
  config = cli.config(PredictConfig)
  from d3d_tf.data import host_memory  # pylint: disable=g-import-not-at-top
  host_memory.request_pooled_allocator()  # Before the first TensorFlow op.
  cli.quiet_tensorflow()
  from d3d_tf.inference import predict_lib  # pylint: disable=g-import-not-at-top  (TF: after the flags)
  try:
    predictor = predict_lib.load_from_config(config)
  except predict_lib.PredictError as e:
    _fail(str(e))
  for note in predictor.notes:
    print(f"note: {note}", file=sys.stderr)
  videos = predict_lib.list_videos(config.video)
  if not videos:
    _fail(f"--video={config.video!r} holds no video file (or does not exist).")
  failed = False
  sink = _open_windows_output(config)
  try:
    for path in videos:
      try:
        if config.streams_windows:
          result = _predict_timeline(predictor, path, config, sink)
        else:
          result = predict_lib.predict_with_config(predictor, path, config)
      except predict_lib.PredictError as e:
        cli.error("predict", e)
        failed = True
        continue
      print(json.dumps(result) if config.json else predict_lib.format_result(result),
            flush=True)
  finally:
    if sink is not None:
      sink.close()
  if failed:
    sys.exit(2)


def _open_windows_output(config):
  """The per-window file, opened for writing (CSV with its header), or None."""
  if not config.windows_output:
    return None
  from d3d_tf.inference import predict_lib  # pylint: disable=g-import-not-at-top
  folder = os.path.dirname(os.path.abspath(config.windows_output))
  os.makedirs(folder, exist_ok=True)
  sink = open(config.windows_output, "w", encoding="utf-8")
  if config.windows_output.lower().endswith(".csv"):
    sink.write(predict_lib.WINDOW_CSV_HEADER + "\n")
  return sink


def _predict_timeline(predictor, path, config, sink):
  """Every window of `path`, streamed: lines to `sink`, a picture with --plot, the result."""
  from d3d_tf.inference import timeline  # pylint: disable=g-import-not-at-top
  fmt = timeline.output_format(config.windows_output) if config.windows_output else "jsonl"
  line = timeline.predict_timeline(
      predictor, path, window_seconds=config.sliding_window,
      stride_seconds=config.window_stride, short_side=config.short_side or None,
      k=config.top_k, sink=sink, fmt=fmt)
  result = timeline.result(line, predictor.labels, config.top_k)
  if config.plot:
    name = os.path.splitext(os.path.basename(path))[0] + ".timeline.png"
    result["plot"] = timeline.plot(line, predictor.labels, os.path.join(config.plot, name))
  return result


def run():
  """Console-script entry point."""
  cli.run(main, "predict", PredictConfig)


if __name__ == "__main__":
  run()
