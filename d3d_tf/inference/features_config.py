"""`FeaturesConfig`: every flag of `d3d_tf.extract_features`, declared once, and its checks.

No TensorFlow here (`--help` and flag errors answer at once); `features_lib` does the work.
"""

import dataclasses
import shlex

from d3d_tf.common import config_lib
from d3d_tf.common import defaults

REQUIRED = config_lib.REQUIRED
DTYPES = ("float32", "float16")
# `--endpoint` values besides the S3D-G endpoint names (`d3d_tf.models.ENDPOINTS`).
LOGITS = "logits"
POOLED = "pooled"  # VideoSwin: its tokens averaged (what its head reads).
RUNNERS = ("local", "beam")

_flag = config_lib.flag


@dataclasses.dataclass
class FeaturesConfig(config_lib.CommandConfig):
  """One extraction run; each field is the `d3d_tf.extract_features` flag of the same name."""
  model: str = _flag(REQUIRED, "A .keras file or a model dir of d3d_tf.train (its "
                     "student.keras): S3D-G (any variant) or VideoSwin. The clip length, stride "
                     "and crop are the ones stored in the model.")
  output_dir: str = _flag(REQUIRED, "Where the .npz files, manifest.csv and failures.csv go; "
                          "the .npz tree mirrors the input folder.")
  videos: str = _flag("", "Video files: a folder (searched recursively), a glob, or a text "
                      "file of paths (one a line).")
  records: str = _flag("", "Or converted TFRecords (glob; several: comma-separated): their "
                       "stored frames are used, nothing is decoded again.")
  endpoint: str = _flag("", "What to extract: an S3D-G endpoint (e.g. Mixed_5c, Mixed_4f), "
                        "'logits', or for VideoSwin 'pooled'. Default: the model's last "
                        "feature layer (S3D-G: its final endpoint, Mixed_5c for a full model; "
                        "VideoSwin: pooled).")
  keep_time: bool = _flag(False, "Keep the endpoint's temporal axis (features [windows, T', D]); "
                          "default: pooled over space and time ([windows, D]).")
  window_stride: int = _flag(0, "Frames between window starts, after --fps; 0: the window's "
                             "span (num_frames x stride of the model: back to back). Smaller "
                             "values overlap.", lower=0)
  fps: float = _flag(0.0, "Resample videos to this frame rate first (nearest frame in time); "
                     "0 keeps the source's.", lower=0.0)
  views: int = _flag(1, "Spatial views per window: 1 (centre crop) or 3 (start, centre, end "
                     "crops along the long side; features averaged).", enum=(1, 3))
  dtype: str = _flag("float32", "Stored feature type (float16 halves the files).", enum=DTYPES)
  batch_size: int = _flag(8, "Windows per forward pass (from one or several videos).", lower=1)
  short_side: int = _flag(defaults.SHORT_SIDE, "Resize decoded frames' short side first (as the converter "
                          "stores records); 0 keeps the size. Not used with --records.", lower=0)
  quiet: bool = _flag(False, "No progress lines.")
  overwrite: bool = _flag(
      False, "Start --output_dir afresh (its .npz files and tables are deleted) instead of "
      "refusing a relaunch whose settings differ from the ones it kept in flags.txt: one "
      "folder never mixes features of two settings.")
  runner: str = _flag("local", "local: this process (decoding in a thread, batches across "
                      "videos). beam: an Apache Beam pipeline, one video per task and the model "
                      "loaded once per worker, on the engine --beam_pipeline_options names; "
                      "the same .npz files, manifest.csv and failures.csv.", enum=RUNNERS)
  beam_pipeline_options: str = _flag(
      "", "With --runner=beam: Beam pipeline options as one quoted string, e.g. "
      "\"--runner=DirectRunner --direct_num_workers=4 --direct_running_mode=multi_processing\"; "
      "empty runs on DirectRunner in this process. Paths must be ones every worker sees.")

  def check(self) -> None:
    if bool(self.videos) == bool(self.records):
      raise ValueError("give exactly one of --videos (video files) and --records (TFRecords).")
    if self.records and self.fps:
      raise ValueError("--fps resamples decoded videos; records keep their stored frames, so "
                       "leave --fps out with --records (or pass --videos).")
    if self.beam_pipeline_options and self.runner != "beam":
      raise ValueError("--beam_pipeline_options only applies to --runner=beam: add "
                       "--runner=beam, or drop the options.")
    try:
      shlex.split(self.beam_pipeline_options)
    except ValueError:
      raise ValueError("--beam_pipeline_options is not a valid shell-quoted string; close "
                       "every quote.") from None


# Settings a relaunch may change without changing the features (echoed); any other difference
# would mix features of two settings in one folder, and is refused.
RELAUNCH_MAY_DIFFER = ("quiet", "batch_size", "runner", "beam_pipeline_options", "overwrite")


def prepare_output_dir(config: FeaturesConfig):
  """--overwrite, or the relaunch check against the output dir's flags.txt; lines to print.

  Raises:
    config_lib.ChangedSettings: the kept settings differ in one that matters.
    ValueError: --overwrite on a directory that is not an extraction's output.
  """
  return config_lib.prepare_run_dir(
      config, config.output_dir, "d3d_tf.extract_features", config.overwrite,
      may_differ=RELAUNCH_MAY_DIFFER, flags_file=defaults.FLAGS_FILE)
