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
import sys

from d3d_tf.common import cli
from d3d_tf.common import file_system as fs
from d3d_tf.data import label_map as label_map_lib
from tfrecords_tools import convert_lib
from tfrecords_tools import layouts
from tfrecords_tools.build_config import BuildConfig

cli.define(BuildConfig)


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
  config = cli.config(BuildConfig)
  cli.quiet_tensorflow()  # The shard writer's; its C++ notices would splice into the bar.
  # Before listing the videos: a missing Beam should fail at once.
  beam_pipeline = _beam_pipeline() if config.runner == "beam" else None
  try:
    for path in (config.input, config.video_dir, config.output_dir, config.label_map):
      fs.check(path)  # s3:// fails here, in one line, not after the videos are listed.
    dataset = layouts.load_dataset(
        config.layout, config.input, video_dir=config.video_dir,
        split_index=config.split_index, val_fraction=config.val_fraction,
        label_map=label_map_lib.read_label_map(config.label_map) if config.label_map else None,
        splits=list(config.splits))
  except (layouts.LayoutError, ValueError, FileNotFoundError) as e:
    _exit_with(" ".join(str(e).split()))
  counts = ", ".join(f"{n} {split}" for split, n in layouts.split_counts(dataset).items())
  print(f"build_tfrecords: {counts or 'no'} videos, {len(dataset.class_names)} classes, "
        f"flow={config.flow} -> {config.output_dir}", file=sys.stderr)
  try:
    if beam_pipeline:
      summary = beam_pipeline.convert(
          dataset, config.output_dir, config, num_shards=config.num_shards,
          pipeline_args=beam_pipeline.parse_pipeline_options(config.beam_pipeline_options))
    else:
      summary = convert_lib.convert(dataset, config.output_dir, config,
                                    num_shards=config.num_shards, workers=config.workers)
  except convert_lib.SettingsMismatchError as e:
    _exit_with(str(e))
  print(f"build_tfrecords: converted {summary['converted']} videos, {summary['failed']} failed "
        f"(see {os.path.join(config.output_dir, convert_lib.FAILURES_FILE)}), "
        f"{summary['seconds']:.1f} s, {summary['videos_per_second']:.2f} videos/s",
        file=sys.stderr)
  return 0 if summary["converted"] else 1


def run():
  """Console-script entry point."""
  cli.run(main, "build_tfrecords", BuildConfig)


if __name__ == "__main__":
  run()
