r"""Classifies videos with a trained D3D model: top-5 labels per video, or per time window.

Usage:
  python -m d3d_tf.predict --model=/tmp/models/d3d --video=clip.mp4
  python -m d3d_tf.predict --model=/tmp/d3d/student.keras --video=/videos/ \
    --sliding_window=2.0 --json
`--model` is a SavedModel export (a version directory or the model directory holding
versions) or a `.keras` file. Clip length, stride, crop and labels are the ones the model was
trained with (stored in it); --num_frames and, for `.keras` files, --crop_size and
--crop_fraction override them, and say so. Failures (unreadable video, missing model, no label
map) print one line and exit with code 2.
"""

import json
import sys

from absl import flags

from d3d_tf.common import cli

_MODEL = flags.DEFINE_string("model", None, "SavedModel export or .keras file.")
_VIDEO = flags.DEFINE_string("video", None, "A video file, or a folder of videos.")
_LABEL_MAP = flags.DEFINE_string(
    "label_map", None, "Label map; default: the model's class names, else label_map.txt "
    "beside a .keras file.")
_SLIDING_WINDOW = flags.DEFINE_float(
    "sliding_window", None, "Also predict per window of this many seconds.")
_JSON = flags.DEFINE_bool("json", False, "Print one JSON object per video.")
_NUM_FRAMES = flags.DEFINE_integer("num_frames", None, "Frames per clip; default: the model's.",
                                   lower_bound=1)
_STRIDE = flags.DEFINE_integer("stride", None, "Temporal stride; only for models that do not "
                               "store theirs (it must match training).", lower_bound=1)
_NUM_CLIPS = flags.DEFINE_integer("num_clips", 4, "Clips per video (logits averaged).",
                                  lower_bound=1)
_CROP_SIZE = flags.DEFINE_integer(
    "crop_size", None, "Model input side (.keras models); default: the model's.", lower_bound=1)
_CROP_FRACTION = flags.DEFINE_float(
    "crop_fraction", None, "Centre crop side / short side (.keras models); default: the "
    "model's.", lower_bound=0.01, upper_bound=1.0)
_SHORT_SIDE = flags.DEFINE_integer("short_side", 256, "Resize frames' short side first "
                                   "(as the records store them); 0 keeps the size.",
                                   lower_bound=0)
_TOP_K = flags.DEFINE_integer("top_k", 5, "Labels printed.", lower_bound=1)

flags.mark_flags_as_required(["model", "video"])
flags.register_validator("sliding_window", lambda v: v is None or v > 0,
                         message="--sliding_window must be positive seconds.")


def _fail(message: str):
  cli.fail("predict", message)


def main(argv):
  cli.no_arguments(argv, "predict")
  from d3d_tf.data import host_memory  # pylint: disable=g-import-not-at-top
  host_memory.request_pooled_allocator()  # Before the first TensorFlow op.
  cli.quiet_tensorflow()
  from d3d_tf.inference import predict_lib  # pylint: disable=g-import-not-at-top  (TF: after the flags)
  try:
    predictor = predict_lib.load_predictor(
        _MODEL.value, _LABEL_MAP.value, crop_size=_CROP_SIZE.value,
        crop_fraction=_CROP_FRACTION.value, num_frames=_NUM_FRAMES.value, stride=_STRIDE.value)
  except predict_lib.PredictError as e:
    _fail(str(e))
  for note in predictor.notes:
    print(f"note: {note}", file=sys.stderr)
  videos = predict_lib.list_videos(_VIDEO.value)
  if not videos:
    _fail(f"--video={_VIDEO.value!r} holds no video file (or does not exist).")
  failed = False
  for path in videos:
    try:
      result = predict_lib.predict_video(
          predictor, path, num_clips=_NUM_CLIPS.value,
          short_side=_SHORT_SIDE.value or None, window_seconds=_SLIDING_WINDOW.value,
          k=_TOP_K.value)
    except predict_lib.PredictError as e:
      cli.error("predict", e)
      failed = True
      continue
    print(json.dumps(result) if _JSON.value else predict_lib.format_result(result), flush=True)
  if failed:
    sys.exit(2)


def run():
  """Console-script entry point."""
  cli.run(main, "predict")


if __name__ == "__main__":
  run()
