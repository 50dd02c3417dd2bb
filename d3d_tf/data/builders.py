"""The one composition of a clip: sample -> read -> crop -> flip -> resize/normalise.

Records and raw videos, training and evaluation, RGB and flow all go through `make_clip_fn`;
what differs is a parameter, not a copy: the source (`record_source`, `video_source`) says how
a video is opened and how its frames are read, the mode how frames and crops are chosen, and
`modality_views` treats RGB and flow alike but for its `is_flow` switch (dmvr's `add_image`).
The RGB and flow of a clip are cut from ONE set of frame indices with ONE shared `state` (crop
box, flip), which is what keeps the distillation teacher (flow) and student (RGB) on the same
clip.
"""

import dataclasses
from typing import Callable, Dict, Optional, Tuple

import tensorflow as tf

from d3d_tf.common import defaults
from d3d_tf.data import crop_boxes
from d3d_tf.data import device_resize
from d3d_tf.data import processors
from d3d_tf.data import records

Features = Dict[str, tf.Tensor]

# Extra feature names of evaluation views.
VIDEO_INDEX = "video_index"
VIDEO_ID = "video_id"
VIEW_INDEX = "view_index"

# How a clip fn chooses frames and crops.
TRAIN = "train"  # One random clip, random crop and flip.
EVAL = "eval"  # Evenly spaced clips x fixed crops, as views.
FULL_VIDEO = "full_video"  # Every frame at the stride, centre crop, one view.
MODES = (TRAIN, EVAL, FULL_VIDEO)


@dataclasses.dataclass(frozen=True)
class ClipConfig:
  """What a clip looks like and how it is augmented.

  Attributes:
    num_frames: Frames per clip (T); in full-video mode, the fewest frames (short videos loop).
    stride: Temporal stride between sampled frames.
    crop_size: Output height and width (S).
    with_rgb: Whether to produce `rgb` float32 [T, S, S, 3] in [-1, 1].
    with_flow: Whether to produce `flow` float32 [T, S, S, 2] (pixels / bound).
    min_area: Training crops cover at least this fraction of the frame area.
    aspect_ratio_range: Training crops' width / height range.
    flip: Whether training clips are flipped left-right with probability 1/2.
    num_clips: Evaluation: temporal clips per video.
    num_crops: Evaluation: spatial crops per clip (1: centre; 3: start, centre, end).
    crop_fraction: Evaluation: crop side as a fraction of the short side, before the resize.
    uint8_clips: Training: cut S x S pixels at a random position (no scale jitter, no resize;
      `min_area` and `aspect_ratio_range` unused) and leave them uint8, RGB as stored and flow
      as quantized, for the model to normalise on the accelerator (`to_unit_on_device`); the
      CPU then does little more than decode. Records only (raw-video flow is float).
    resize_on_device: Training: the same random-area crops as the float clips, but left uint8
      (at most 2S x 2S: `device_resize.keep_lines`) with their resize tables, for the model to
      resize on the accelerator (`device_resize.model_input`): the float clips to float
      rounding. Records only.
  """
  num_frames: int = 16
  stride: int = 1
  crop_size: int = 112
  with_rgb: bool = True
  with_flow: bool = False
  min_area: float = defaults.MIN_AREA
  aspect_ratio_range: Tuple[float, float] = crop_boxes.DEFAULT_ASPECT_RATIO_RANGE
  flip: bool = True
  num_clips: int = 1
  num_crops: int = 1
  crop_fraction: float = defaults.CROP_FRACTION
  uint8_clips: bool = False
  resize_on_device: bool = False

  def __post_init__(self):
    if self.uint8_clips and self.resize_on_device:
      raise ValueError("uint8_clips and resize_on_device are two ways to leave clips uint8; "
                       "choose one.")
    if not (self.with_rgb or self.with_flow):
      raise ValueError("At least one of with_rgb and with_flow must be True.")
    if self.num_frames < 1 or self.stride < 1 or self.crop_size < 1:
      raise ValueError(
          f"num_frames, stride and crop_size must be positive. Received: "
          f"num_frames={self.num_frames}, stride={self.stride}, crop_size={self.crop_size}")
    if self.num_crops not in (1, 3):
      raise ValueError(f"num_crops must be 1 or 3. Received: num_crops={self.num_crops}")

  @property
  def num_views(self) -> int:
    return self.num_clips * self.num_crops


@dataclasses.dataclass(frozen=True)
class Planes:
  """One modality of a clip as its source holds it, before the shared crop, flip and resize.

  Attributes:
    decode: Returns the clip's frames [T', H, W, C] (uint8, or float flow in pixels); called
      inside the composition so that a branch that never runs never decodes.
    decode_window: Optional: decodes only a pixel window (y, x, h, w) of every frame (JPEG's
      `decode_and_crop`); used instead of `decode` + crop, with `size` the frames' (H, W).
    size: (H, W) of the frames when `decode_window` is given.
    to_unit: Flow: maps cropped planes to float in the flow's units before the resize.
    scale: Flow: divides the resized flow by this (pixels -> units of the bound), or None.
    present: Optional bool tensor: False means the modality is all zeros (a 1-frame video
      has no flow) and nothing is decoded.
  """
  decode: Optional[Callable[[], tf.Tensor]] = None
  decode_window: Optional[Callable[[tf.Tensor], tf.Tensor]] = None
  size: Optional[Tuple[tf.Tensor, tf.Tensor]] = None
  to_unit: Callable[[tf.Tensor], tf.Tensor] = lambda planes: planes
  scale: Optional[float] = None
  present: Optional[tf.Tensor] = None


@dataclasses.dataclass(frozen=True)
class Clip:
  """What a source read for a clip: its modalities, and the frame size crop boxes refer to."""
  planes: Dict[str, Planes]
  height: tf.Tensor
  width: tf.Tensor


@dataclasses.dataclass(frozen=True)
class Video:
  """An opened video: its length, label and id, and `read(indices) -> Clip`."""
  num_frames: tf.Tensor
  label: tf.Tensor
  video_id: tf.Tensor
  read: Callable[[tf.Tensor], Clip]


def modality_views(planes: Planes, boxes: tf.Tensor, num_boxes: int, flip: tf.Tensor,
                   size: int, is_flow: bool, length: tf.Tensor,
                   uint8_clips: bool = False, resize_on_device: bool = False) -> tf.Tensor:
  """Crops every box out of one modality, flips, resizes: float32 [num_boxes, T', S, S, C].

  The flip runs on the crop before the resize, where it moves the fewest bytes. RGB is resized
  and normalised to [-1, 1]; flow is mirrored, resized, and its (dx, dy) scaled by the resize
  factors, with x negated when flipped (exact: negation commutes with the bilinear resize).
  With `uint8_clips` the S x S crops are only flipped and stay uint8 (quantized flow's x is
  negated as 255 - q, exact under the records' symmetric quantization). With
  `resize_on_device` the flipped crops stay uint8, cut to the lines the resize reads
  (`device_resize.keep_lines`; flow mirrored only: the device negates its x).
  """
  if resize_on_device and planes.scale is not None:
    raise ValueError("resize_on_device needs flow quantized as in the records; this source's "
                     "flow is float (raw video): read records, or turn it off.")
  if uint8_clips and planes.scale is not None:
    raise ValueError("uint8_clips needs flow quantized as in the records; this source's flow "
                     "is float (raw video): read records, or turn uint8 clips off.")

  def views():
    if planes.decode_window is not None:
      height, width = planes.size
      crop_of = planes.decode_window
    else:
      frames = planes.decode()
      height, width = tf.shape(frames)[1], tf.shape(frames)[2]
      crop_of = lambda window: processors.crop(frames, window)
    sign = tf.where(tf.cast(flip, tf.bool), tf.constant([-1.0, 1.0]), tf.constant([1.0, 1.0]))
    out = []
    for c in range(num_boxes):
      window = crop_boxes.box_to_pixels(boxes[c], height, width)
      if uint8_clips:
        out.append(processors.maybe_flip_left_right(crop_of(window), flip, is_flow))
        continue
      x = processors.maybe_flip_left_right(crop_of(window), flip)
      if resize_on_device:
        out.append(device_resize.keep_lines(x, size))
        continue
      if not is_flow:
        out.append(processors.resize_rgb(x, size))
        continue
      factors = processors.flow_resize_factors(window[2], window[3], size) * sign
      x = processors.resize(planes.to_unit(x), size) * factors
      out.append(x if planes.scale is None else processors.scale_flow(x, planes.scale))
    return tf.stack(out)

  if planes.present is None:
    return views()
  channels = 2 if is_flow else 3
  if resize_on_device:  # Any value: the device zeroes flow whose FLOW_SCALE is 0.
    kept = device_resize.kept_shape(crop_boxes.box_to_pixels(boxes[0], *planes.size), size)
    shape = tf.concat([[num_boxes, length], kept, [channels]], 0)
    return tf.cond(planes.present, views, lambda: tf.fill(shape, tf.constant(128, tf.uint8)))
  shape = tf.stack([num_boxes, length, size, size, channels])
  if uint8_clips:  # Zero flow as the records quantize it: round(127.5) = 128.
    return tf.cond(planes.present, views, lambda: tf.fill(shape, tf.constant(128, tf.uint8)))
  return tf.cond(planes.present, views, lambda: tf.zeros(shape))


# ----------------------------------------------------------------------------
# Where the frames and crops of a clip come from.
# ----------------------------------------------------------------------------


def _clip_seeds(seed: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
  """Independent stateless seeds of one clip's (offset, crop box, flip) from its seed."""
  seeds = tf.random.experimental.stateless_split(seed, 3)
  return seeds[0], seeds[1], seeds[2]


def _shared_state(crop_seed: tf.Tensor, flip_seed: tf.Tensor, height, width,
                  config: ClipConfig) -> crop_boxes.ProcessorState:
  """Draws the randomness every modality of a clip shares: the crop box and the flip."""
  state: crop_boxes.ProcessorState = {}
  if config.uint8_clips:
    crop_boxes.random_fixed_crop_params(height, width, config.crop_size, seed=crop_seed,
                                        state=state)
  else:
    crop_boxes.random_crop_params(height, width, config.min_area, config.aspect_ratio_range,
                                  seed=crop_seed, state=state)
  if config.flip:
    processors.random_flip_params(flip_seed, state=state)
  else:
    state[processors.FLIP_STATE] = tf.constant(False)
  return state


def eval_clip_indices(num_frames, config: ClipConfig) -> tf.Tensor:
  """int32 [K, T] frame indices of the K evenly spaced clips (`processors.linspace_offsets`)."""
  offsets = processors.linspace_offsets(num_frames, config.num_frames, config.stride,
                                        config.num_clips)
  steps = offsets[:, None] + tf.range(config.num_frames)[None, :] * config.stride
  return tf.math.floormod(steps, tf.maximum(tf.cast(num_frames, tf.int32), 1))


def full_video_indices(num_frames, config: ClipConfig) -> tf.Tensor:
  """int32 [1, L]: every frame at the stride, looped up to `config.num_frames` frames."""
  length = tf.maximum((num_frames + config.stride - 1) // config.stride, config.num_frames)
  return tf.math.floormod(tf.range(length) * config.stride, num_frames)[None]


def eval_crop_boxes(height, width, config: ClipConfig) -> tf.Tensor:
  """float32 [C, 4] normalized boxes: the centre crop, or the three crops along the long side."""
  if config.num_crops == 1:
    return crop_boxes.center_crop_box(height, width, config.crop_fraction)[None]
  return crop_boxes.three_crop_boxes(height, width, config.crop_fraction)


def _views(per_crop: tf.Tensor, config: ClipConfig, num_clips) -> tf.Tensor:
  """[C, K*T, S, S, ch] -> [K*C, T, S, S, ch] in clip-major order (view = clip * C + crop)."""
  s = config.crop_size
  ch = per_crop.shape[-1]
  x = tf.reshape(per_crop, [config.num_crops, num_clips, -1, s, s, ch])
  x = tf.transpose(x, [1, 0, 2, 3, 4, 5])
  return tf.reshape(x, [-1, tf.shape(x)[2], s, s, ch])


def make_clip_fn(open_video: Callable[[Dict[str, tf.Tensor]], Video], config: ClipConfig,
                 mode: str = TRAIN) -> Callable[[Dict[str, tf.Tensor]], Tuple[Features, tf.Tensor]]:
  """Returns `fn(element) -> (features, label)`: the clip (or views) of one video.

  `open_video` is a source's opener (`record_source.opener`, `video_source.opener`). In
  TRAIN mode `element["seed"]` (a stateless int64 [2] seed) draws the clip's offset, crop and
  flip, and features are [T, S, S, C]. In EVAL and FULL_VIDEO modes features have a leading
  view axis V in clip-major order (view v = clip * num_crops + crop), plus `video_id`.
  """
  if mode not in MODES:
    raise ValueError(f"mode must be one of {MODES}. Received: mode={mode!r}")
  training = mode == TRAIN

  def fn(element):
    video = open_video(element)
    if training:
      offset_seed, crop_seed, flip_seed = _clip_seeds(element["seed"])
      offset = processors.sample_random_offset(video.num_frames, config.num_frames,
                                               config.stride, offset_seed)
      indices = processors.sample_clip_indices(video.num_frames, config.num_frames,
                                               config.stride, offset)
    elif mode == FULL_VIDEO:
      indices = full_video_indices(video.num_frames, config)
    else:
      indices = eval_clip_indices(video.num_frames, config)
    flat = tf.reshape(indices, [-1])
    clip = video.read(flat)
    if training:
      state = _shared_state(crop_seed, flip_seed, clip.height, clip.width, config)
      boxes, flip = state[crop_boxes.CROP_BOX_STATE][None], state[processors.FLIP_STATE]
      num_boxes = 1
    else:
      boxes, flip = eval_crop_boxes(clip.height, clip.width, config), tf.constant(False)
      num_boxes = config.num_crops
    features = {}
    on_device = training and config.resize_on_device
    side = None if on_device else config.crop_size  # Crops of any size up to 2S.
    for name, is_flow in ((records.RGB, False), (records.FLOW, True)):
      if name not in clip.planes:
        continue
      views = modality_views(clip.planes[name], boxes, num_boxes, flip, config.crop_size,
                             is_flow, tf.size(flat), uint8_clips=training and config.uint8_clips,
                             resize_on_device=on_device)
      if training:
        channels = 2 if is_flow else 3
        features[name] = tf.ensure_shape(views[0], [config.num_frames, side, side, channels])
      else:
        features[name] = _views(views, config, tf.shape(indices)[0])
    if on_device:
      flow = clip.planes.get(records.FLOW)
      present = True if flow is None or flow.present is None else flow.present
      features.update(device_resize.resize_tables(
          crop_boxes.box_to_pixels(boxes[0], clip.height, clip.width), flip, present,
          config.crop_size))
    if not training:
      features[VIDEO_ID] = video.video_id
    return features, video.label

  return fn
