"""`PredictConfig`: every flag of `d3d_tf.predict`, declared once.

`d3d_tf.predict` defines its flags from the fields and checks them while parsing;
`predict_lib.load_from_config` and `predict_lib.predict_with_config` take the config. No
TensorFlow here.
"""

import dataclasses
from typing import Optional

from d3d_tf.common import config_lib
from d3d_tf.common import defaults

REQUIRED = config_lib.REQUIRED
_flag = config_lib.flag


@dataclasses.dataclass
class PredictConfig(config_lib.CommandConfig):
  """One prediction run; each field is the `d3d_tf.predict` flag of the same name.

  The geometry fields left None are the model's.
  """
  model: str = _flag(REQUIRED, "SavedModel export or .keras file.")
  video: str = _flag(REQUIRED, "A video file, or a folder of videos.")
  label_map: Optional[str] = _flag(
      None, "Label map; default: the model's class names, else "
      f"{defaults.LABEL_MAP_FILE} beside a .keras file.")
  sliding_window: Optional[float] = _flag(
      None, "Also predict per window of this many seconds (with --window_stride, "
      "--windows_output or --plot: the windows' length; default there: the model's clip).")
  window_stride: Optional[float] = _flag(
      None, "Seconds between window starts; smaller than the window overlaps. Streams the "
      "video window by window: the video's result is the mean of the window logits.")
  windows_output: Optional[str] = _flag(
      None, "Write each window's top-k to this .jsonl or .csv file as it is computed "
      "(video, start_seconds, end_seconds, labels, scores); streams as --window_stride does.")
  plot: Optional[str] = _flag(
      None, "Write a timeline PNG per video into this folder: the top classes' scores over "
      "time; streams as --window_stride does.")
  json: bool = _flag(False, "Print one JSON object per video.")
  num_frames: Optional[int] = _flag(None, "Frames per clip; default: the model's.", lower=1)
  stride: Optional[int] = _flag(
      None, "Temporal stride; only for models that do not store theirs (it must match "
      "training).", lower=1)
  num_clips: int = _flag(4, "Clips per video (logits averaged).", lower=1)
  crop_size: Optional[int] = _flag(
      None, "Model input side (.keras models); default: the model's.", lower=1)
  crop_fraction: Optional[float] = _flag(
      None, "Centre crop side / short side (.keras models); default: the model's.",
      lower=0.01, upper=1.0)
  short_side: int = _flag(
      defaults.SHORT_SIDE, "Resize frames' short side first (as the records store them); 0 "
      "keeps the size.", lower=0)
  top_k: int = _flag(5, "Labels printed.", lower=1)

  def check(self):
    if self.sliding_window is not None and not self.sliding_window > 0:
      raise ValueError("--sliding_window must be positive seconds.")
    if self.window_stride is not None and not self.window_stride > 0:
      raise ValueError("--window_stride must be positive seconds.")
    if self.windows_output and not self.windows_output.lower().endswith(
        (".jsonl", ".json", ".csv")):
      raise ValueError(f"--windows_output={self.windows_output!r} must end in .jsonl (JSON "
                       "lines) or .csv.")

  @property
  def streams_windows(self) -> bool:
    """Window by window over the whole video (the flags that need every window)."""
    return bool(self.window_stride or self.windows_output or self.plot)
