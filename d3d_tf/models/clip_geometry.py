"""The clip geometry a classifier was trained with, stored in the classifier itself.

S3D-G is fully convolutional: fed 16x112 clips, a model trained on 8x32 clips runs and returns
wrong numbers. So the model keeps what it was trained on (frames, stride, crop, the evaluation
centre crop, input range, modality, the flow it was trained on, class names) in its Keras config; it travels
with the `.keras` file and is copied into a SavedModel's assets. Evaluate, export, predict,
probe and the teacher loader read it, and take their geometry flags only as overrides.
"""

import dataclasses
import json
from typing import Dict, List, Optional, Sequence, Tuple

from d3d_tf.common import defaults
from d3d_tf.models.flow_settings import FlowSettings

MODALITIES = ("rgb", "flow")
# Input channels of each modality (flow: dx, dy), and the modality a model's channels mean.
CHANNELS_BY_MODALITY = {"rgb": 3, "flow": 2}
MODALITY_BY_CHANNELS = {c: m for m, c in CHANNELS_BY_MODALITY.items()}
# Overrides that are meaningful for a fully convolutional network at test time: longer or
# shorter windows, larger or smaller crops, another centre-crop fraction. The temporal stride
# changes the speed of motion the filters see, so it must match.
OVERRIDABLE = ("num_frames", "crop_size", "crop_fraction")
# What a `fixed_size` model (VideoSwin: windows and masks built for one input size) cannot change.
SIZE = ("num_frames", "crop_size")
DEFAULT_CROP_FRACTION = defaults.CROP_FRACTION


@dataclasses.dataclass(frozen=True)
class ClipGeometry:
  """What a model's input clips look like.

  Attributes:
    num_frames: Frames per clip.
    stride: Temporal stride between the frames of a clip.
    crop_size: Side of the square crop the model sees.
    crop_fraction: Evaluation centre-crop side as a fraction of the frame's short side.
    modality: "rgb" (3 channels) or "flow" (2 channels, x then y).
    input_range: (low, high) of the model's input: RGB is mapped there, flow is pixels / bound.
    flow_bound: Flow clip bound in pixels of the records trained on (flow models only).
    labels: Class names in index order, or None.
    fixed_size: True when the model takes only `num_frames` x `crop_size` clips (VideoSwin);
      False for a fully convolutional one (S3D-G), which runs on other sizes too.
    flow_algorithm: Flow method of the records trained on (tvl1, dis, farneback; flow models
      only), or None when unknown.
    flow_format: How those records quantised the flow (png or jpeg planes), or None.
  """
  num_frames: int
  crop_size: int
  stride: int = 1
  crop_fraction: float = DEFAULT_CROP_FRACTION
  modality: str = "rgb"
  input_range: Tuple[float, float] = (-1.0, 1.0)
  flow_bound: Optional[float] = None
  labels: Optional[Tuple[str, ...]] = None
  fixed_size: bool = False
  flow_algorithm: Optional[str] = None
  flow_format: Optional[str] = None

  def __post_init__(self):
    if self.modality not in MODALITIES:
      raise ValueError(f"modality must be one of {MODALITIES}; received {self.modality!r}.")
    for name in ("num_frames", "crop_size", "stride"):
      if int(getattr(self, name)) < 1:
        raise ValueError(f"{name} must be >= 1; received {getattr(self, name)!r}.")
    if not 0.0 < float(self.crop_fraction) <= 1.0:
      raise ValueError(f"crop_fraction must be in (0, 1]; received {self.crop_fraction!r}.")
    object.__setattr__(self, "input_range", tuple(float(v) for v in self.input_range))
    if self.labels is not None:
      object.__setattr__(self, "labels", tuple(str(v) for v in self.labels))

  @property
  def channels(self) -> int:
    return CHANNELS_BY_MODALITY[self.modality]

  @property
  def flow_settings(self) -> Optional[FlowSettings]:
    """The flow a flow model was trained on; None for RGB or when nothing was stored."""
    if self.modality != "flow" or not self.flow_bound:
      return None
    return FlowSettings(self.flow_algorithm, float(self.flow_bound), self.flow_format)

  def with_flow_settings(self, settings: Optional[FlowSettings]) -> "ClipGeometry":
    """A copy storing `settings` (None: none stored)."""
    if settings is None:
      return dataclasses.replace(self, flow_bound=None, flow_algorithm=None, flow_format=None)
    return dataclasses.replace(self, flow_bound=float(settings.bound),
                               flow_algorithm=settings.algorithm,
                               flow_format=settings.quantization)

  def to_dict(self) -> Dict:
    out = dataclasses.asdict(self)
    out["input_range"] = list(self.input_range)
    out["labels"] = list(self.labels) if self.labels is not None else None
    if not self.fixed_size:
      del out["fixed_size"]  # S3D-G files and exports stay as they were before the field.
    for name in ("flow_algorithm", "flow_format"):
      if out[name] is None:
        del out[name]  # RGB models' files and exports stay as they were before the fields.
    return out

  @classmethod
  def from_dict(cls, config: Dict) -> "ClipGeometry":
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in config.items() if k in names})

  def to_json(self) -> str:
    return json.dumps(self.to_dict(), indent=2)

  def describe(self) -> str:
    """`8 frames x 32 px, stride 1, centre crop 0.875, rgb` for messages."""
    text = (f"{self.num_frames} frames x {self.crop_size} px, stride {self.stride}, centre crop "
            f"{self.crop_fraction:g}, {self.modality}")
    settings = self.flow_settings
    text += f" ({settings.describe()})" if settings else ""
    return text + (", fixed size" if self.fixed_size else "")


def geometry_of(model) -> Optional[ClipGeometry]:
  """The geometry a model carries (`S3DGClassifier.clip_geometry`), or None."""
  geometry = getattr(model, "clip_geometry", None)
  return geometry if isinstance(geometry, ClipGeometry) else None


def coerce(value) -> Optional[ClipGeometry]:
  """None, a `ClipGeometry` or its dict -> `ClipGeometry` or None."""
  if value is None or isinstance(value, ClipGeometry):
    return value
  if isinstance(value, dict):
    return ClipGeometry.from_dict(value)
  raise ValueError(f"clip_geometry must be a ClipGeometry or a dict; received {value!r}.")


def _flag_list(names: Sequence[str]) -> str:
  return " and ".join(f"--{n}" for n in names)


def resolve(model_geometry: Optional[ClipGeometry], overrides: Dict[str, Optional[float]],
            source: str, required: Sequence[str] = ("num_frames", "crop_size"),
            ) -> Tuple[Dict[str, float], List[str]]:
  """The geometry a consumer uses: the model's, with the flags given as overrides.

  Args:
    model_geometry: What the model carries, or None (an older file, a user's own model).
    overrides: flag name -> value, None where the flag was not given. Keys among
      `OVERRIDABLE + FIXED`.
    source: The model's path, for messages.
    required: Flags that must be given when the model carries no geometry.

  Returns:
    (values for every key of `overrides`, notes to echo: one per override that differs).

  Raises:
    ValueError: no geometry and a required flag missing, or an override of a fixed value.
  """
  values, notes = {}, []
  if model_geometry is None:
    missing = [n for n in required if overrides.get(n) is None]
    if missing:
      raise ValueError(
          f"{source} does not record the clip geometry it was trained with (a model saved "
          f"before d3d_tf stored it, or not made by d3d_tf.train): pass {_flag_list(missing)} "
          "as used in training.")
    defaults = {"stride": 1, "crop_fraction": DEFAULT_CROP_FRACTION}
    for name, value in overrides.items():
      values[name] = value if value is not None else defaults.get(name)
    return values, notes
  for name, value in overrides.items():
    stored = getattr(model_geometry, name)
    if value is None or value == stored:
      values[name] = stored
      continue
    if model_geometry.fixed_size and name in SIZE:
      raise ValueError(
          f"--{name}={value} contradicts {source}, which takes only {model_geometry.num_frames}"
          f"-frame {model_geometry.crop_size}-px clips (its attention windows are built for "
          f"that size); use --{name}={stored} (or leave it out).")
    if name not in OVERRIDABLE:
      raise ValueError(
          f"--{name}={value} contradicts {source}, trained with {name}={stored}: its filters "
          f"learned motion at that {name}; use --{name}={stored} (or leave it out).")
    values[name] = value
    notes.append(f"--{name}={value} overrides {name}={stored} of {source} (fully "
                 "convolutional: allowed, but not the geometry it was trained with).")
  return values, notes
