"""`BuildConfig`: every flag of `tfrecords_tools.build_tfrecords`, declared once.

`EncodeOptions` holds the flags that change the bytes of the records (what a resumed
conversion must share with the first run, and what summary.json records); `BuildConfig` adds
where the videos come from and how the work runs. The converter (`convert_lib.convert`,
`beam_pipeline.convert`) takes either and keeps the encoding part. No TensorFlow here.
"""

import dataclasses
import os
import shlex
from typing import Optional, Tuple

from d3d_tf.common import config_lib
from d3d_tf.common import defaults
from d3d_tf.common import file_system as fs
from d3d_tf.video import optical_flow
from tfrecords_tools import flow as flow_lib
from tfrecords_tools import layouts
from tfrecords_tools import shard_plan

FLOW_CHOICES = optical_flow.ALGORITHMS + ("none",)
_flag = config_lib.flag


def _shown(value):
  return list(value) if isinstance(value, tuple) else value


def require_flags(config, names, ok: bool, message: str) -> None:
  """Raises ValueError naming the flags and their values as absl's validators do:
  `flag --name=value: message`, or `flags a=1, b=2: message` for a rule on several."""
  if ok:
    return
  if len(names) == 1:
    raise ValueError(f"flag --{names[0]}={_shown(getattr(config, names[0]))}: {message}")
  values = ", ".join(f"{n}={_shown(getattr(config, n))}" for n in names)
  raise ValueError(f"flags {values}: {message}")


@dataclasses.dataclass(frozen=True)
class EncodeOptions(config_lib.CommandConfig):
  """How each video is encoded. Every field changes the bytes of the records.

  `flow_timing` False (default) stores flow/seconds as 0, so shards are byte-identical run to
  run; True stores the measured seconds, and shards then differ only in that value.
  `max_lost_fraction` decides which videos the shards hold: one that decodes to fewer than
  (1 - max_lost_fraction) of the frames its container promises (a truncated download, a
  corrupt packet) is a failure ("decoded 151 of 250 frames: <error>"); one that loses less is
  kept and counted as partial in summary.json.
  """
  short_side: int = _flag(
      defaults.SHORT_SIDE, "Resize frames so the short side is this many pixels (aspect kept); "
      "0 keeps the source size.")
  fps: float = _flag(0.0, "Resample to this frame rate; 0 keeps the source rate.")
  max_frames: int = _flag(
      0, "Keep at most this many frames per video (after --fps); 0 keeps all.")
  jpeg_quality: int = _flag(90, "JPEG quality of the RGB frames.")
  flow: str = _flag(
      "tvl1", "Optical flow stored with the frames: tvl1 (the paper's, slow), dis (fast), "
      "farneback, or none.", enum=FLOW_CHOICES)
  flow_bound: float = _flag(
      defaults.FLOW_BOUND, "Flow is clipped to [-B, B] pixels before quantizing to 0..255.")
  flow_timing: bool = _flag(
      False, "Store the measured seconds spent on each video's flow (flow/seconds). Off by "
      "default, which keeps shards byte-identical from run to run and across interruptions; "
      f"{defaults.SUMMARY_FILE} has the run's flow seconds either way.")
  flow_format: str = _flag(
      "png", "How flow planes are stored: png (lossless, the default) or jpeg (lossy at "
      "--flow_jpeg_quality; read faster: docs/PERFORMANCE.md has both, and the flow teacher's "
      "accuracy with each).", enum=flow_lib.FLOW_FORMATS)
  flow_jpeg_quality: int = _flag(95, "JPEG quality of the flow planes with --flow_format=jpeg.")
  max_lost_fraction: float = _flag(
      defaults.MAX_LOST_FRACTION, "A video that decodes to fewer than (1 - this) of the frames "
      f"its container promises is a failure in {defaults.FAILURES_FILE}; one that loses less is "
      f"kept and counted in {defaults.SUMMARY_FILE} (partial_videos, frames_lost).")

  def check(self):
    """Each flag's range; messages say what to pass instead."""
    def check(name, ok, message):
      require_flags(self, [name], ok, message)
    check("flow_bound", self.flow_bound > 0, "must be positive, e.g. --flow_bound=20")
    check("short_side", self.short_side == 0 or (
        self.short_side >= 16 and self.short_side % 2 == 0),
          f"must be 0 (keep the size) or an even number >= 16, e.g. {defaults.SHORT_SIDE}")
    check("fps", self.fps >= 0, "must be 0 (keep the source rate) or positive, e.g. 25")
    check("max_frames", self.max_frames >= 0, "must be 0 (keep all frames) or positive")
    check("jpeg_quality", 1 <= self.jpeg_quality <= 100, "must be in 1..100; 90-95 is typical")
    check("flow_jpeg_quality", 1 <= self.flow_jpeg_quality <= 100, "must be in 1..100, e.g. 95")
    check("max_lost_fraction", 0.0 <= self.max_lost_fraction < 1.0,
          "must be in [0, 1), the share of its frames a video may lose and be kept, e.g. 0.05")

  def encoding(self) -> "EncodeOptions":
    """Only the fields that change the records (a `BuildConfig` has more)."""
    return EncodeOptions(**{f.name: getattr(self, f.name)
                            for f in dataclasses.fields(EncodeOptions)})


def _shell_quoted(text: str) -> bool:
  try:
    shlex.split(text or "")
  except ValueError:
    return False
  return True


@dataclasses.dataclass(frozen=True, kw_only=True)
class BuildConfig(EncodeOptions):
  """One conversion; each field is the `build_tfrecords` flag of the same name."""
  input: str = _flag(
      config_lib.REQUIRED, "A folder of class folders (--layout=folder), the Kinetics CSV, or "
      "the folder of UCF101/HMDB51 split files. Here and in --video_dir, --output_dir and "
      "--label_map: a local path or a URL TensorFlow reads (gs://; s3:// needs a mount).")
  layout: str = _flag("folder", "How --input is organised.", enum=layouts.LAYOUTS)
  video_dir: Optional[str] = _flag(
      None, "Where the videos are, for kinetics (flat <id>_<start>_<end>.mp4), ucf101 and "
      "hmdb51 (<class>/<video>).")
  split_index: int = _flag(1, "Official split 1..3 (ucf101, hmdb51).")
  output_dir: str = _flag(config_lib.REQUIRED, "Where shards and metadata are written.")
  workers: int = _flag(
      os.cpu_count() or 1, "Processes decoding videos and computing flow; 1 runs everything "
      "in this process.")
  num_shards: int = _flag(
      0, f"Shards per split; 0 picks about {shard_plan.VIDEOS_PER_SHARD} videos a shard.")
  splits: Tuple[str, ...] = _flag(
      (), "Convert only these splits (train, val, test, unlabelled); empty converts all.")
  val_fraction: float = _flag(
      0.0, "--layout=folder without split folders: hold out this fraction of each class as "
      "the val split.")
  label_map: Optional[str] = _flag(
      None, f"Use this {defaults.LABEL_MAP_FILE} (e.g. from an earlier conversion) instead of "
      "deriving one; videos of other classes are listed as failures.")
  runner: str = _flag(
      "local", "local: this machine's processes (--workers). beam: an Apache Beam pipeline "
      "(pip install -e .[beam]) on the engine that --beam_pipeline_options names; the same "
      "records and files.", enum=("local", "beam"))
  beam_pipeline_options: str = _flag(
      "", "With --runner=beam: Beam pipeline options as one quoted string, e.g. "
      "\"--runner=FlinkRunner --flink_master=HOST:8081 --parallelism=64\"; empty runs on "
      "DirectRunner. Engines and paths: WORKSPACE.md.")

  def check(self):
    super().check()

    def check(name, ok, message):
      require_flags(self, [name], ok, message)
    # A URL is checked when read: TensorFlow, which reads it, loads after the flags.
    check("input", self.input is None or fs.is_url(self.input) or os.path.exists(self.input),
          "does not exist; pass an existing folder or annotation file")
    check("split_index", 1 <= self.split_index <= 3, "must be 1, 2 or 3 (the official splits)")
    check("workers", self.workers >= 1, "must be at least 1")
    check("num_shards", self.num_shards >= 0, "must be 0 (automatic) or positive")
    check("splits", set(self.splits) <= set(layouts.SPLITS),
          f"must list splits among {', '.join(layouts.SPLITS)}")
    check("val_fraction", 0.0 <= self.val_fraction < 1.0, "must be in [0, 1), e.g. 0.1")
    check("label_map", self.label_map is None or fs.is_url(self.label_map)
          or os.path.isfile(self.label_map),
          f"does not exist; pass the {defaults.LABEL_MAP_FILE} of an earlier conversion")
    check("beam_pipeline_options", _shell_quoted(self.beam_pipeline_options),
          "is not a valid shell-quoted string; close every quote")
    require_flags(self, ["layout", "video_dir"], self.layout == "folder" or bool(self.video_dir),
                  "--video_dir is required with --layout=kinetics/ucf101/hmdb51: pass the "
                  "folder that holds the videos")
    require_flags(self, ["layout", "val_fraction"],
                  self.layout == "folder" or not self.val_fraction,
                  "--val_fraction only applies to --layout=folder; the other layouts have "
                  "official splits")
    require_flags(self, ["runner", "beam_pipeline_options"],
                  self.runner == "beam" or not self.beam_pipeline_options,
                  "--beam_pipeline_options only applies to --runner=beam: add --runner=beam, or "
                  "drop the options")
