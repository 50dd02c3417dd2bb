r"""Converts a video dataset into sharded TFRecords with RGB frames and optical flow.

One SequenceExample per video (schema: d3d_tf/data/records.py, table in WORKSPACE.md): JPEG
frames resized to --short_side, and quantized TV-L1/DIS/Farneback flow as PNG planes. Runs in
parallel, skips and lists bad videos, and resumes where an interrupted run stopped.

Usage:

  # <root>/<class>/<video>, 10% of each class held out as val:
  python -m tfrecords_tools.build_tfrecords --layout=folder --input=/data/my_videos \
      --val_fraction=0.1 --output_dir=/data/my_records

  # UCF101, official split 1, TV-L1 flow as in the paper:
  python -m tfrecords_tools.build_tfrecords --layout=ucf101 --input=/data/ucfTrainTestlist \
      --video_dir=/data/UCF-101 --split_index=1 --flow=tvl1 --output_dir=/data/ucf101_s1

  # Kinetics, fast DIS flow, 25 fps:
  python -m tfrecords_tools.build_tfrecords --layout=kinetics --input=kinetics400/train.csv \
      --video_dir=/data/k400/videos --flow=dis --fps=25 --output_dir=/data/k400_records

  # The same as an Apache Beam pipeline (pip install -e .[beam]; engines: WORKSPACE.md):
  python -m tfrecords_tools.build_tfrecords --layout=kinetics --input=kinetics400/train.csv \
      --video_dir=/data/k400/videos --flow=dis --fps=25 --output_dir=/data/k400_records \
      --runner=beam --beam_pipeline_options="--runner=DirectRunner --direct_num_workers=8 \
      --direct_running_mode=multi_processing"

Writes to --output_dir: <split>-NNNNN-of-MMMMM.tfrecord, label_map.txt, failures.csv,
summary.json. Exit status: 0 when at least one video was converted, 1 when none was, 2 for a
wrong flag.
"""

import os
import shlex
import sys

from absl import flags

from d3d_tf.common import cli
from d3d_tf.common import file_system as fs
from d3d_tf.data import label_map as label_map_lib
from tfrecords_tools import convert_lib
from tfrecords_tools import flow as flow_lib
from tfrecords_tools import layouts

_INPUT = flags.DEFINE_string(
    "input", None, "A folder of class folders (--layout=folder), the Kinetics CSV, or the "
    "folder of UCF101/HMDB51 split files. Here and in --video_dir, --output_dir and "
    "--label_map: a local path or a URL TensorFlow reads (gs://; s3:// needs a mount).")
_LAYOUT = flags.DEFINE_enum("layout", "folder", layouts.LAYOUTS, "How --input is organised.")
_VIDEO_DIR = flags.DEFINE_string(
    "video_dir", None, "Where the videos are, for kinetics (flat <id>_<start>_<end>.mp4), "
    "ucf101 and hmdb51 (<class>/<video>).")
_SPLIT_INDEX = flags.DEFINE_integer("split_index", 1, "Official split 1..3 (ucf101, hmdb51).")
_OUTPUT_DIR = flags.DEFINE_string("output_dir", None, "Where shards and metadata are written.")
_FLOW = flags.DEFINE_enum(
    "flow", "tvl1", convert_lib.FLOW_CHOICES,
    "Optical flow stored with the frames: tvl1 (the paper's, slow), dis (fast), farneback, or "
    "none.")
_FLOW_BOUND = flags.DEFINE_float(
    "flow_bound", 20.0, "Flow is clipped to [-B, B] pixels before quantizing to 0..255.")
_FLOW_FORMAT = flags.DEFINE_enum(
    "flow_format", "png", flow_lib.FLOW_FORMATS,
    "How flow planes are stored: png (lossless, the default) or jpeg (lossy at "
    "--flow_jpeg_quality; read faster: docs/PERFORMANCE.md has both, and the flow teacher's "
    "accuracy with each).")
_FLOW_JPEG_QUALITY = flags.DEFINE_integer(
    "flow_jpeg_quality", 95, "JPEG quality of the flow planes with --flow_format=jpeg.")
_SHORT_SIDE = flags.DEFINE_integer(
    "short_side", 256, "Resize frames so the short side is this many pixels (aspect kept); 0 "
    "keeps the source size.")
_FPS = flags.DEFINE_float("fps", 0.0, "Resample to this frame rate; 0 keeps the source rate.")
_MAX_FRAMES = flags.DEFINE_integer(
    "max_frames", 0, "Keep at most this many frames per video (after --fps); 0 keeps all.")
_JPEG_QUALITY = flags.DEFINE_integer("jpeg_quality", 90, "JPEG quality of the RGB frames.")
_WORKERS = flags.DEFINE_integer(
    "workers", os.cpu_count() or 1, "Processes decoding videos and computing flow; 1 runs "
    "everything in this process.")
_NUM_SHARDS = flags.DEFINE_integer(
    "num_shards", 0, "Shards per split; 0 picks about "
    f"{convert_lib.VIDEOS_PER_SHARD} videos a shard.")
_SPLITS = flags.DEFINE_list(
    "splits", [], "Convert only these splits (train, val, test, unlabelled); empty converts all.")
_VAL_FRACTION = flags.DEFINE_float(
    "val_fraction", 0.0, "--layout=folder without split folders: hold out this fraction of "
    "each class as the val split.")
_LABEL_MAP = flags.DEFINE_string(
    "label_map", None, "Use this label_map.txt (e.g. from an earlier conversion) instead of "
    "deriving one; videos of other classes are listed as failures.")
_FLOW_TIMING = flags.DEFINE_bool(
    "flow_timing", False, "Store the measured seconds spent on each video's flow "
    "(flow/seconds). Off by default, which keeps shards byte-identical from run to run and "
    "across interruptions; summary.json has the run's flow seconds either way.")

_RUNNER = flags.DEFINE_enum(
    "runner", "local", ["local", "beam"], "local: this machine's processes (--workers). beam: "
    "an Apache Beam pipeline (pip install -e .[beam]) on the engine that "
    "--beam_pipeline_options names; the same records and files.")
_BEAM_PIPELINE_OPTIONS = flags.DEFINE_string(
    "beam_pipeline_options", "", "With --runner=beam: Beam pipeline options as one quoted "
    "string, e.g. \"--runner=FlinkRunner --flink_master=HOST:8081 --parallelism=64\"; "
    "empty runs on DirectRunner. Engines and paths: WORKSPACE.md.")

flags.mark_flags_as_required(["input", "output_dir"])


def _shell_quoted(text: str) -> bool:
  try:
    shlex.split(text or "")
  except ValueError:
    return False
  return True


def _register_validators() -> None:
  """Checks each flag on its own; messages say what to pass instead."""
  checks = {
      # A URL is checked when read: TensorFlow, which reads it, loads after the flags.
      "input": (lambda v: v is None or fs.is_url(v) or os.path.exists(v),
                "does not exist; pass an existing folder or annotation file"),
      "split_index": (lambda v: 1 <= v <= 3, "must be 1, 2 or 3 (the official splits)"),
      "flow_bound": (lambda v: v > 0, "must be positive, e.g. --flow_bound=20"),
      "short_side": (lambda v: v == 0 or (v >= 16 and v % 2 == 0),
                     "must be 0 (keep the size) or an even number >= 16, e.g. 256"),
      "fps": (lambda v: v >= 0, "must be 0 (keep the source rate) or positive, e.g. 25"),
      "max_frames": (lambda v: v >= 0, "must be 0 (keep all frames) or positive"),
      "jpeg_quality": (lambda v: 1 <= v <= 100, "must be in 1..100; 90-95 is typical"),
      "flow_jpeg_quality": (lambda v: 1 <= v <= 100, "must be in 1..100, e.g. 95"),
      "workers": (lambda v: v >= 1, "must be at least 1"),
      "num_shards": (lambda v: v >= 0, "must be 0 (automatic) or positive"),
      "splits": (lambda v: set(v) <= set(layouts.SPLITS),
                 f"must list splits among {', '.join(layouts.SPLITS)}"),
      "val_fraction": (lambda v: 0.0 <= v < 1.0, "must be in [0, 1), e.g. 0.1"),
      "label_map": (lambda v: v is None or fs.is_url(v) or os.path.isfile(v),
                    "does not exist; pass the label_map.txt of an earlier conversion"),
      "beam_pipeline_options": (_shell_quoted,
                                "is not a valid shell-quoted string; close every quote"),
  }
  for name, (check, message) in checks.items():
    flags.register_validator(name, check, message=message)
  flags.register_multi_flags_validator(
      ["layout", "video_dir"], lambda f: f["layout"] == "folder" or bool(f["video_dir"]),
      message="--video_dir is required with --layout=kinetics/ucf101/hmdb51: pass the folder "
      "that holds the videos")
  flags.register_multi_flags_validator(
      ["layout", "val_fraction"], lambda f: f["layout"] == "folder" or not f["val_fraction"],
      message="--val_fraction only applies to --layout=folder; the other layouts have official "
      "splits")
  flags.register_multi_flags_validator(
      ["runner", "beam_pipeline_options"],
      lambda f: f["runner"] == "beam" or not f["beam_pipeline_options"],
      message="--beam_pipeline_options only applies to --runner=beam: add --runner=beam, or "
      "drop the options")


_register_validators()


def _exit_with(message: str, status: int = 2) -> None:
  cli.fail("build_tfrecords", message, status)


def _beam_pipeline():
  """The Beam runner's module, imported only for --runner=beam (Beam is an optional extra)."""
  try:
    from tfrecords_tools import beam_pipeline  # pylint: disable=g-import-not-at-top
  except ModuleNotFoundError as e:
    if (e.name or "").split(".")[0] != "apache_beam":
      raise
    _exit_with("--runner=beam needs Apache Beam, which is not installed: "
               "pip install -e .[beam]")
  return beam_pipeline


def main(argv):
  if len(argv) > 1:
    _exit_with(f"unexpected arguments {argv[1:]}; every input is a flag, e.g. --input=PATH")
  cli.quiet_tensorflow()  # The shard writer's; its C++ notices would splice into the bar.
  # Before listing the videos: a missing Beam should fail at once.
  beam_pipeline = _beam_pipeline() if _RUNNER.value == "beam" else None
  try:
    for path in (_INPUT.value, _VIDEO_DIR.value, _OUTPUT_DIR.value, _LABEL_MAP.value):
      fs.check(path)  # s3:// fails here, in one line, not after the videos are listed.
    dataset = layouts.load_dataset(
        _LAYOUT.value, _INPUT.value, video_dir=_VIDEO_DIR.value, split_index=_SPLIT_INDEX.value,
        val_fraction=_VAL_FRACTION.value,
        label_map=label_map_lib.read_label_map(_LABEL_MAP.value) if _LABEL_MAP.value else None,
        splits=_SPLITS.value)
  except (layouts.LayoutError, ValueError, FileNotFoundError) as e:
    _exit_with(" ".join(str(e).split()))
  options = convert_lib.EncodeOptions(
      short_side=_SHORT_SIDE.value, fps=_FPS.value, max_frames=_MAX_FRAMES.value,
      jpeg_quality=_JPEG_QUALITY.value, flow=_FLOW.value, flow_bound=_FLOW_BOUND.value,
      flow_timing=_FLOW_TIMING.value, flow_format=_FLOW_FORMAT.value,
      flow_jpeg_quality=_FLOW_JPEG_QUALITY.value)
  counts = ", ".join(f"{n} {split}" for split, n in layouts.split_counts(dataset).items())
  print(f"build_tfrecords: {counts or 'no'} videos, {len(dataset.class_names)} classes, "
        f"flow={options.flow} -> {_OUTPUT_DIR.value}", file=sys.stderr)
  try:
    if beam_pipeline:
      summary = beam_pipeline.convert(
          dataset, _OUTPUT_DIR.value, options, num_shards=_NUM_SHARDS.value,
          pipeline_args=beam_pipeline.parse_pipeline_options(_BEAM_PIPELINE_OPTIONS.value))
    else:
      summary = convert_lib.convert(dataset, _OUTPUT_DIR.value, options,
                                    num_shards=_NUM_SHARDS.value, workers=_WORKERS.value)
  except convert_lib.SettingsMismatchError as e:
    _exit_with(str(e))
  print(f"build_tfrecords: converted {summary['converted']} videos, {summary['failed']} failed "
        f"(see {os.path.join(_OUTPUT_DIR.value, convert_lib.FAILURES_FILE)}), "
        f"{summary['seconds']:.1f} s, {summary['videos_per_second']:.2f} videos/s",
        file=sys.stderr)
  return 0 if summary["converted"] else 1


def run():
  """Console-script entry point."""
  cli.run(main, "build_tfrecords")


if __name__ == "__main__":
  run()
