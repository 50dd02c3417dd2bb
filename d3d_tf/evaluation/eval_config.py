"""`EvalConfig`: every flag of `d3d_tf.evaluate`, declared once.

The models, the split, where the reports go, the fusion weights and the protocol (K clips x
crops, clip geometry overrides, batching). `d3d_tf.evaluate` defines its flags from the fields
and checks them while parsing; `evaluate_lib.evaluate` takes the config. No TensorFlow here.
"""

import dataclasses
from typing import Dict, Optional, Tuple

from d3d_tf.common import config_lib
from d3d_tf.common import defaults

REQUIRED = config_lib.REQUIRED
_flag = config_lib.flag

# The fields that describe how videos are viewed (report.json's "protocol").
PROTOCOL_FIELDS = ("num_clips", "num_crops", "num_frames", "stride", "crop_size",
                   "crop_fraction", "batch_size")


@dataclasses.dataclass
class EvalConfig(config_lib.CommandConfig):
  """One evaluation; each field is the `d3d_tf.evaluate` flag of the same name.

  The clip shape fields left None come from the models' stored geometry; a value given
  overrides it where that is meaningful (`clip_geometry.OVERRIDABLE`).
  """
  models: Tuple[str, ...] = _flag(
      REQUIRED, "Comma-separated models: .keras files or model dirs of d3d_tf.train, or .onnx / "
      ".tflite exports (d3d_tf.export --format=onnx|litert: what you ship, measured).")
  eval_files: str = _flag(REQUIRED, "Glob of the split's TFRecords.")
  output_dir: str = _flag(REQUIRED, "Where the reports are written.")
  label_map: Optional[str] = _flag(
      None, "Label map; default: the class names the first model stores, else "
      f"{defaults.LABEL_MAP_FILE} beside it.")
  fusion_weights: Optional[Tuple[float, ...]] = _flag(
      None, "One weight per model (default all 1).", lower=0)
  num_clips: int = _flag(4, "Clips per video; 0: whole video.", lower=0)
  num_crops: int = _flag(1, "Spatial crops per clip.", enum=(1, 3))
  num_frames: Optional[int] = _flag(
      None, "Frames per clip; default: the models' (longer windows are allowed).", lower=1)
  stride: Optional[int] = _flag(
      None, "Temporal stride; only for models that do not store theirs (it must match "
      "training).", lower=1)
  crop_size: Optional[int] = _flag(None, "Model input side; default: the models'.", lower=8)
  crop_fraction: Optional[float] = _flag(
      None, f"Centre crop side / short side; default: the models' ({defaults.CROP_FRACTION}).",
      lower=0.01, upper=1.0)
  batch_size: Optional[int] = _flag(None, "Views per batch (default: one video).", lower=1)
  flow_seconds_per_video: Optional[float] = _flag(
      None, "Optical-flow seconds per video for the flow rows' cost column; default: measured "
      "by the converter (the records' flow/seconds, else its summary.json); with neither the "
      "column says 'unknown'.", lower=0)

  def check(self):
    if not self.models:
      raise ValueError("--models: pass at least one model.")

  def geometry_overrides(self) -> Dict[str, Optional[float]]:
    return {"num_frames": self.num_frames, "stride": self.stride, "crop_size": self.crop_size,
            "crop_fraction": self.crop_fraction}

  def protocol(self) -> Dict[str, Optional[float]]:
    """How videos are viewed: K clips x crops, the geometry overrides, batching."""
    return {name: getattr(self, name) for name in PROTOCOL_FIELDS}
