r"""Builds the synthetic motion benchmark: mp4 clips whose class is in the motion alone.

Ten classes (translation in four directions, rotation either way, expansion, contraction,
horizontal and vertical shaking) of a textured actor among distractors, over a random textured
background, with camera shake and noise; no single frame tells the class (tfrecords_tools/
synthetic.py explains how). The clips are real mp4 files in the folder layout, converted by the
real converter, so the benchmark exercises the same path as a real dataset.

Usage:

  python -m tfrecords_tools.make_synthetic --output_dir=data/synthetic
  python -m tfrecords_tools.make_synthetic --flagfile=configs/synthetic_data.flags  # quickstart's
  # -> data/synthetic/videos/{train,val,test}/<class>/<class>_NNNN.mp4
  #    data/synthetic/records/{train,val,test}-NNNNN-of-MMMMM.tfrecord, label_map.txt, ...
  # --unlabelled_per_class=N adds an unlabelled split (videos/unlabelled, unlabelled-*.tfrecord).

The same --seed and sizes always give the same clips (the same decoded pixels) and the same
records, byte for byte (unless --flow_timing stores measured seconds in them).
"""

import os
import sys
import time

from absl import flags

from d3d_tf.common import cli
from tfrecords_tools import convert_lib
from tfrecords_tools import synthetic

_OUTPUT_DIR = flags.DEFINE_string(
    "output_dir", "data/synthetic", "Writes videos/ (folder layout) and records/ here.")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of every random choice; same seed, same data.")
_TRAIN_PER_CLASS = flags.DEFINE_integer("train_per_class", 30, "Training clips per class.")
_VAL_PER_CLASS = flags.DEFINE_integer(
    "val_per_class", 10, "Validation clips per class (watched during training, for tuning).")
_TEST_PER_CLASS = flags.DEFINE_integer(
    "test_per_class", 0, "Test clips per class, for the final table only (never for tuning).")
_UNLABELLED_PER_CLASS = flags.DEFINE_integer(
    "unlabelled_per_class", 0, "Extra training clips per class in a split of their own, "
    "unlabelled (records keep the true label, for the flow teacher; the D3D student reads them "
    "through d3d_tf.train --unlabelled_train_files, which hides it). Issue 23; "
    "configs/synthetic_unlabelled_data.flags uses 20. 0 writes no such split.")
_SIZE = flags.DEFINE_integer("size", 64, "Frame height and width in pixels.")
_MIN_LENGTH = flags.DEFINE_integer("min_length", 16, "Fewest frames in a clip.")
_MAX_LENGTH = flags.DEFINE_integer("max_length", 24, "Most frames in a clip.")
_CLUTTER = flags.DEFINE_bool(
    "clutter", True, "Distractors, camera shake, sensor noise and a grainy background; "
    "--noclutter leaves one textured actor on a smooth background.")
_ACTOR_SCALE = flags.DEFINE_float(
    "actor_scale", 1.0, "Multiplies the actor's radius (12-16 px at 64 px): a larger actor puts "
    "more of the frame in motion. configs/synthetic_data.flags uses 2.")
_SPEED = flags.DEFINE_float(
    "speed", 1.0, "Multiplies every class's rate of motion (pixels, degrees or scale per frame). "
    "configs/synthetic_data.flags uses 2, so that an RGB network can learn some of the motion.")
_APPEARANCE_SHORTCUT = flags.DEFINE_float(
    "appearance_shortcut", 0.0, "Probability P that the actor wears a class palette (two fixed "
    "colours per class): in the train split its own class's, in val and test a class drawn "
    "independently of its own, so appearance predicts the class in training only (issue 23; "
    "configs/synthetic_shortcut_data.flags uses 0.8). 0 renders the usual clips, byte for byte.")
_FPS = flags.DEFINE_integer("fps", 25, "Frame rate written into the mp4 files.")
_WORKERS = flags.DEFINE_integer(
    "workers", os.cpu_count() or 1, "Processes rendering clips and converting them.")
_CONVERT = flags.DEFINE_bool(
    "convert", True, "Also convert the clips to TFRecords in <output_dir>/records.")
_FLOW = flags.DEFINE_enum(
    "flow", "dis", convert_lib.FLOW_CHOICES, "Flow stored in the records; dis is fast, tvl1 is "
    "the paper's but ~100x slower.")
_FLOW_TIMING = flags.DEFINE_bool(
    "flow_timing", False, "Store each clip's measured flow seconds in its record (flow/seconds). "
    "Off by default: measured times differ run to run, so records would not be byte-identical; "
    "summary.json has the run's flow seconds either way.")
_NUM_SHARDS = flags.DEFINE_integer(
    "num_shards", 0, "Shards per split; 0 picks about "
    f"{convert_lib.VIDEOS_PER_SHARD} clips a shard.")

flags.register_validator("train_per_class", lambda v: v >= 1, message="must be at least 1")
flags.register_validator("val_per_class", lambda v: v >= 0, message="must be 0 or more")
flags.register_validator("test_per_class", lambda v: v >= 0, message="must be 0 or more")
flags.register_validator("unlabelled_per_class", lambda v: v >= 0,
                         message="must be 0 or more")
flags.register_validator("size", lambda v: v >= 32 and v % 2 == 0,
                         message="must be an even number >= 32, e.g. 64")
flags.register_validator("min_length", lambda v: v >= 2, message="must be at least 2")
flags.register_multi_flags_validator(
    ["min_length", "max_length"], lambda f: f["max_length"] >= f["min_length"],
    message="--max_length must be >= --min_length")
flags.register_validator("actor_scale", lambda v: 0.25 <= v <= 4,
                         message="must be in [0.25, 4], e.g. 1 or 2")
flags.register_validator("speed", lambda v: 0 < v <= 8, message="must be in (0, 8], e.g. 1 or 2")
flags.register_validator("appearance_shortcut", lambda v: 0 <= v <= 1,
                         message="must be a probability in [0, 1], e.g. 0 (off) or 0.8")
flags.register_validator("fps", lambda v: v >= 1, message="must be at least 1, e.g. 25")
flags.register_validator("workers", lambda v: v >= 1, message="must be at least 1")
flags.register_validator("num_shards", lambda v: v >= 0, message="must be 0 (auto) or more")


def main(argv):
  if len(argv) > 1:
    cli.fail("make_synthetic", f"unexpected arguments {argv[1:]}; every input is a flag")
  cli.quiet_tensorflow()  # The shard writer's; its C++ notices would splice into the bar.
  videos_dir = os.path.join(_OUTPUT_DIR.value, "videos")
  counts = {"train": _TRAIN_PER_CLASS.value}
  if _VAL_PER_CLASS.value:
    counts["val"] = _VAL_PER_CLASS.value
  if _TEST_PER_CLASS.value:
    counts["test"] = _TEST_PER_CLASS.value
  if _UNLABELLED_PER_CLASS.value:
    counts["unlabelled"] = _UNLABELLED_PER_CLASS.value
  specs = synthetic.clip_specs(_SEED.value, counts, _SIZE.value, _MIN_LENGTH.value,
                               _MAX_LENGTH.value, _CLUTTER.value, _ACTOR_SCALE.value,
                               _SPEED.value, _APPEARANCE_SHORTCUT.value)
  start = time.perf_counter()
  synthetic.write_videos(videos_dir, specs, _FPS.value, _WORKERS.value)
  print(f"make_synthetic: wrote {len(specs)} clips of {len(synthetic.CLASSES)} classes to "
        f"{videos_dir} in {time.perf_counter() - start:.1f} s", file=sys.stderr)
  if _CONVERT.value:
    summary = synthetic.convert_clips(videos_dir, os.path.join(_OUTPUT_DIR.value, "records"),
                                      _SIZE.value, _FLOW.value, _WORKERS.value,
                                      _NUM_SHARDS.value, _FLOW_TIMING.value)
    print(f"make_synthetic: converted {summary['converted']} clips ({summary['failed']} failed) "
          f"with {_FLOW.value} flow; {time.perf_counter() - start:.1f} s in all", file=sys.stderr)
    return 0 if summary["converted"] else 1
  return 0


def run():
  """Console-script entry point."""
  cli.run(main, "make_synthetic")


if __name__ == "__main__":
  run()
