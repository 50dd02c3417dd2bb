"""Composes processors into per-video functions: parse -> sample -> decode -> preprocess.

Each builder returns one function the tf.data pipelines map over videos. The RGB and flow
modalities of a clip are built from ONE set of frame indices and ONE shared `state` (crop box,
flip), which is what keeps the distillation teacher (flow) and student (RGB) on the same clip.
The same stages serve records (JPEG/PNG bytes decoded in-graph) and raw videos (frames read
with PyAV in `tf.numpy_function`).
"""

import dataclasses
from typing import Callable, Dict, Optional, Tuple

import numpy as np
import tensorflow as tf

from d3d_tf.data import processors
from d3d_tf.data import raw_video
from d3d_tf.data import records

Features = Dict[str, tf.Tensor]

# Extra feature names of evaluation views.
VIDEO_INDEX = "video_index"
VIDEO_ID = "video_id"
VIEW_INDEX = "view_index"


@dataclasses.dataclass(frozen=True)
class ClipConfig:
  """What a clip looks like and how it is augmented.

  Attributes:
    num_frames: Frames per clip (T).
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
  """
  num_frames: int = 16
  stride: int = 1
  crop_size: int = 112
  with_rgb: bool = True
  with_flow: bool = False
  min_area: float = 0.08
  aspect_ratio_range: Tuple[float, float] = processors.DEFAULT_ASPECT_RATIO_RANGE
  flip: bool = True
  num_clips: int = 1
  num_crops: int = 1
  crop_fraction: float = 0.875

  def __post_init__(self):
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


# ----------------------------------------------------------------------------
# Parse.
# ----------------------------------------------------------------------------


def parse_record(serialized: tf.Tensor, example_name: tf.Tensor, with_flow: bool):
  """`records.parse_sequence_example` that also names the record ("file:index") in errors."""
  sequence_spec = {records.RGB_JPEG: tf.io.FixedLenSequenceFeature([], tf.string)}
  if with_flow:
    sequence_spec[records.FLOW_X] = tf.io.FixedLenSequenceFeature(
        [], tf.string, allow_missing=True)
    sequence_spec[records.FLOW_Y] = tf.io.FixedLenSequenceFeature(
        [], tf.string, allow_missing=True)
  return tf.io.parse_single_sequence_example(
      serialized, context_features=records.CONTEXT_SPEC, sequence_features=sequence_spec,
      example_name=example_name)


def example_name(source: tf.Tensor, index: tf.Tensor) -> tf.Tensor:
  """"<file>:<record index>", the name errors use for a record."""
  return tf.strings.join([source, tf.strings.as_string(index)], separator=":")


# ----------------------------------------------------------------------------
# Decode stages (records).
# ----------------------------------------------------------------------------


def _decode_unique(indices: tf.Tensor,
                   decode_at: Callable[[tf.Tensor], tf.Tensor]) -> tf.Tensor:
  """`decode_at(indices)`, decoding each distinct index once (short videos repeat frames)."""
  unique, position = tf.unique(indices)
  return tf.cond(
      tf.equal(tf.size(unique), tf.size(indices)),
      lambda: decode_at(indices),
      lambda: tf.gather(decode_at(unique), position))


def _decode_jpegs_at(jpegs: tf.Tensor, indices: tf.Tensor, window=None) -> tf.Tensor:
  return _decode_unique(
      indices, lambda i: processors.decode_jpeg_frames(tf.gather(jpegs, i), crop_window=window))


def rgb_train_stage(jpegs: tf.Tensor, indices: tf.Tensor, height, width,
                    config: ClipConfig, state: processors.ProcessorState) -> tf.Tensor:
  """Sampled JPEGs -> random crop (decoded in the window only) -> flip -> resize -> [-1, 1].

  The flip runs on the uint8 crop, before the resize, where it moves the fewest bytes.
  """
  box = processors.random_crop_params(height, width, config.min_area,
                                      config.aspect_ratio_range, state=state)
  window = processors.box_to_pixels(box, height, width)
  frames = _decode_jpegs_at(jpegs, indices, window)
  frames = processors.maybe_flip_left_right(frames, state[processors.FLIP_STATE])
  frames = processors.resize_rgb(frames, config.crop_size)
  return tf.ensure_shape(frames, [config.num_frames, config.crop_size, config.crop_size, 3])


def flow_stage(flow_x: tf.Tensor, flow_y: tf.Tensor, indices: tf.Tensor, num_frames: tf.Tensor,
               boxes: tf.Tensor, flip: tf.Tensor, config: ClipConfig,
               name: tf.Tensor) -> tf.Tensor:
  """Encoded flow planes -> the planes of `indices` -> crop(s) -> flip -> / bound -> resize.

  Planes stay quantized (uint8) through crop and flip, and are dequantized straight into units
  of the bound before the resize (exact up to float rounding: dequantization is affine and
  commutes with the resize).

  Args:
    flow_x: string [N - 1] encoded x planes.
    flow_y: string [N - 1] encoded y planes.
    indices: int32 [T'] frame indices (flow index i: from frame i to i + 1; the last frame
      reuses the last plane; a 1-frame video gets zero flow).
    num_frames: N.
    boxes: float32 [C, 4] normalized crop boxes, applied in turn.
    flip: bool scalar, flip left-right (negating x).
    config: The clip config.
    name: Record name for error messages.

  Returns:
    float32 [C, T', S, S, 2] flow in units of B pixels of the output frame.
  """
  num_planes = tf.shape(flow_x)[0]
  check = tf.debugging.Assert(
      tf.logical_and(tf.equal(num_planes, num_frames - 1),
                     tf.equal(tf.shape(flow_y)[0], num_planes)),
      ["Record has no (or incomplete) flow planes; convert it with flow or use "
       "with_flow=False:", name, "frames:", num_frames, "flow planes:", num_planes])
  size = config.crop_size
  sign = tf.where(tf.cast(flip, tf.bool), tf.constant([-1.0, 1.0]), tf.constant([1.0, 1.0]))

  def decoded():
    quantized = _decode_unique(
        processors.flow_indices(indices, num_frames),
        lambda i: processors.decode_flow_planes(tf.gather(flow_x, i), tf.gather(flow_y, i)))
    h, w = tf.shape(quantized)[1], tf.shape(quantized)[2]

    def one_box(box):
      window = processors.box_to_pixels(box, h, w)
      planes = processors.maybe_flip_left_right(processors.crop(quantized, window), flip)
      # Into units of B in one pass; the flip's negated x joins the resize factors.
      factors = processors.flow_resize_factors(window[2], window[3], size) * sign
      return processors.resize(processors.dequantize_flow_unit(planes), size) * factors

    return tf.map_fn(one_box, boxes, fn_output_signature=tf.float32)

  def zeros():
    return tf.zeros(tf.stack([tf.shape(boxes)[0], tf.size(indices), size, size, 2]),
                    tf.float32)

  with tf.control_dependencies([check]):
    return tf.cond(num_planes > 0, decoded, zeros)


def _clip_seeds(seed: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
  """Independent stateless seeds of one clip's (offset, crop box, flip) from its seed."""
  seeds = tf.random.experimental.stateless_split(seed, 3)
  return seeds[0], seeds[1], seeds[2]


def _shared_state(crop_seed: tf.Tensor, flip_seed: tf.Tensor, height, width,
                  config: ClipConfig) -> processors.ProcessorState:
  """Draws the randomness every modality of a clip shares: the crop box and the flip."""
  state: processors.ProcessorState = {}
  processors.random_crop_params(height, width, config.min_area, config.aspect_ratio_range,
                                seed=crop_seed, state=state)
  if config.flip:
    processors.random_flip_params(flip_seed, state=state)
  else:
    state[processors.FLIP_STATE] = tf.constant(False)
  return state


def make_train_clip_fn(config: ClipConfig) -> Callable[..., Tuple[Features, tf.Tensor]]:
  """Returns `fn(serialized, name, seed) -> (features, label)`: one random training clip.

  `seed` is a stateless seed (int64 [2]) for this clip; `name` ("file:index") is used in
  error messages.
  """

  def fn(serialized, name, seed):
    context, sequence = parse_record(serialized, name, config.with_flow)
    jpegs = sequence[records.RGB_JPEG]
    num_frames = tf.shape(jpegs)[0]
    height, width = processors.jpeg_shape(jpegs[0])
    offset_seed, crop_seed, flip_seed = _clip_seeds(seed)
    state = _shared_state(crop_seed, flip_seed, height, width, config)
    offset = processors.sample_random_offset(num_frames, config.num_frames, config.stride,
                                             offset_seed)
    indices = processors.sample_clip_indices(num_frames, config.num_frames, config.stride,
                                             offset)
    features = {}
    if config.with_rgb:
      features[records.RGB] = rgb_train_stage(jpegs, indices, height, width, config, state)
    if config.with_flow:
      flow = flow_stage(
          sequence[records.FLOW_X], sequence[records.FLOW_Y], indices, num_frames,
          state[processors.CROP_BOX_STATE][None], state[processors.FLIP_STATE], config, name)
      features[records.FLOW] = tf.ensure_shape(
          flow[0], [config.num_frames, config.crop_size, config.crop_size, 2])
    return features, tf.cast(context[records.LABEL_INDEX], tf.int32)

  return fn


# ----------------------------------------------------------------------------
# Evaluation views.
# ----------------------------------------------------------------------------


def eval_clip_indices(num_frames, config: ClipConfig) -> tf.Tensor:
  """int32 [K, T] frame indices of the K evenly spaced clips (`processors.linspace_offsets`)."""
  offsets = processors.linspace_offsets(num_frames, config.num_frames, config.stride,
                                        config.num_clips)
  steps = offsets[:, None] + tf.range(config.num_frames)[None, :] * config.stride
  return tf.math.floormod(steps, tf.maximum(tf.cast(num_frames, tf.int32), 1))


def eval_crop_boxes(height, width, config: ClipConfig) -> tf.Tensor:
  """float32 [C, 4] normalized boxes: the centre crop, or the three crops along the long side."""
  if config.num_crops == 1:
    return processors.center_crop_box(height, width, config.crop_fraction)[None]
  return processors.three_crop_boxes(height, width, config.crop_fraction)


def _views(per_crop: tf.Tensor, config: ClipConfig, num_clips) -> tf.Tensor:
  """[C, K*T, S, S, ch] -> [K*C, T, S, S, ch] in clip-major order (view = clip * C + crop)."""
  s = config.crop_size
  ch = per_crop.shape[-1]
  x = tf.reshape(per_crop, [config.num_crops, num_clips, -1, s, s, ch])
  x = tf.transpose(x, [1, 0, 2, 3, 4, 5])
  return tf.reshape(x, [-1, tf.shape(x)[2], s, s, ch])


def make_eval_views_fn(config: ClipConfig, full_video: bool = False,
                       min_frames: int = 1) -> Callable[..., Tuple[Features, tf.Tensor]]:
  """Returns `fn(serialized, name) -> (features, label)` with every view of one video.

  Features have a leading view axis V = num_clips * num_crops in clip-major order
  (view v = clip * num_crops + crop). With `full_video=True` there is one view: all frames
  at `config.stride` (looped up to `min_frames` when shorter), centre crop.
  """

  def fn(serialized, name):
    context, sequence = parse_record(serialized, name, config.with_flow)
    jpegs = sequence[records.RGB_JPEG]
    num_frames = tf.shape(jpegs)[0]
    height, width = processors.jpeg_shape(jpegs[0])
    if full_video:
      length = tf.maximum((num_frames + config.stride - 1) // config.stride, min_frames)
      indices = tf.math.floormod(tf.range(length) * config.stride, num_frames)[None]
    else:
      indices = eval_clip_indices(num_frames, config)
    num_clips = tf.shape(indices)[0]
    flat = tf.reshape(indices, [-1])
    boxes = eval_crop_boxes(height, width, config)
    features = {}
    if config.with_rgb:
      frames = _decode_jpegs_at(jpegs, flat)
      per_crop = tf.stack([
          processors.resize_rgb(
              processors.crop(frames, processors.box_to_pixels(boxes[c], height, width)),
              config.crop_size)
          for c in range(config.num_crops)])
      features[records.RGB] = _views(per_crop, config, num_clips)
    if config.with_flow:
      flow = flow_stage(sequence[records.FLOW_X], sequence[records.FLOW_Y], flat, num_frames,
                        boxes, tf.constant(False), config, name)
      features[records.FLOW] = _views(flow, config, num_clips)
    features[VIDEO_ID] = context[records.VIDEO_ID]
    return features, tf.cast(context[records.LABEL_INDEX], tf.int32)

  return fn


# ----------------------------------------------------------------------------
# Raw videos.
# ----------------------------------------------------------------------------


def probe_op(path: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor]:
  """In-graph `raw_video.probe`: (int32 number of frames, int32 clockwise rotation)."""

  def probe(p):
    num_frames, rotation = raw_video.probe(p)
    return np.int32(num_frames), np.int32(rotation)

  num_frames, rotation = tf.numpy_function(probe, [path], [tf.int32, tf.int32],
                                           stateful=False)
  return tf.ensure_shape(num_frames, []), tf.ensure_shape(rotation, [])


def read_clip_op(path: tf.Tensor, indices: tf.Tensor, num_frames: tf.Tensor,
                 rotation: tf.Tensor, short_side: Optional[int], with_flow: bool,
                 flow_algorithm: str = "dis") -> Tuple[tf.Tensor, tf.Tensor]:
  """In-graph `raw_video.read_clip`: (uint8 [T, H, W, 3], float32 flow [T, H, W, 2] or [0])."""

  def read(p, idx, n, r):
    return raw_video.read_clip(p, idx, short_side, with_flow, int(n), int(r), flow_algorithm)

  frames, flow = tf.numpy_function(read, [path, indices, num_frames, rotation],
                                   [tf.uint8, tf.float32], stateful=False)
  frames = tf.ensure_shape(frames, [None, None, None, 3])
  flow = tf.ensure_shape(flow, [None, None, None, 2] if with_flow else [0])
  return frames, flow


def _raw_flow(flow: tf.Tensor, flow_bound: float) -> tf.Tensor:
  """Clips on-the-fly flow to the records' bound so both sources give the same inputs."""
  return tf.clip_by_value(flow, -flow_bound, flow_bound)


def make_raw_train_clip_fn(config: ClipConfig, short_side: Optional[int] = 256,
                           flow_bound: float = records.DEFAULT_FLOW_BOUND,
                           flow_algorithm: str = "dis") -> Callable[..., Features]:
  """Returns `fn(path, seed) -> features`: a random training clip read from a video file.

  Same sampling and augmentation as `make_train_clip_fn`; the frames are read with PyAV
  (seeking to them) and the flow computed on the fly, clipped to `flow_bound` pixels.
  """

  def fn(path, seed):
    num_frames, rotation = probe_op(path)
    offset_seed, crop_seed, flip_seed = _clip_seeds(seed)
    offset = processors.sample_random_offset(num_frames, config.num_frames, config.stride,
                                             offset_seed)
    indices = processors.sample_clip_indices(num_frames, config.num_frames, config.stride,
                                             offset)
    frames, flow = read_clip_op(path, indices, num_frames, rotation, short_side,
                                config.with_flow, flow_algorithm)
    # Raw frames are decoded whole, so the shared crop and flip are drawn after reading.
    height, width = tf.shape(frames)[1], tf.shape(frames)[2]
    state = _shared_state(crop_seed, flip_seed, height, width, config)
    window = processors.box_to_pixels(state[processors.CROP_BOX_STATE], height, width)
    flip = state[processors.FLIP_STATE]
    features = {}
    if config.with_rgb:
      rgb = processors.maybe_flip_left_right(processors.crop(frames, window), flip)
      rgb = processors.resize_rgb(rgb, config.crop_size)
      features[records.RGB] = tf.ensure_shape(
          rgb, [config.num_frames, config.crop_size, config.crop_size, 3])
    if config.with_flow:
      f = processors.crop(_raw_flow(flow, flow_bound), window)
      f = processors.maybe_flip_left_right(f, flip, is_flow=True)
      f = processors.resize(f, config.crop_size) * processors.flow_resize_factors(
          window[2], window[3], config.crop_size)
      features[records.FLOW] = tf.ensure_shape(
          processors.scale_flow(f, flow_bound),
          [config.num_frames, config.crop_size, config.crop_size, 2])
    return features

  return fn


def make_raw_eval_views_fn(config: ClipConfig, short_side: Optional[int] = 256,
                           flow_bound: float = records.DEFAULT_FLOW_BOUND,
                           flow_algorithm: str = "dis") -> Callable[..., Features]:
  """Returns `fn(path) -> features` with the V views of one video file (clip-major order)."""

  def fn(path):
    num_frames, rotation = probe_op(path)
    indices = eval_clip_indices(num_frames, config)
    flat = tf.reshape(indices, [-1])
    frames, flow = read_clip_op(path, flat, num_frames, rotation, short_side,
                                config.with_flow, flow_algorithm)
    height, width = tf.shape(frames)[1], tf.shape(frames)[2]
    boxes = eval_crop_boxes(height, width, config)
    windows = [processors.box_to_pixels(boxes[c], height, width)
               for c in range(config.num_crops)]
    features = {}
    if config.with_rgb:
      per_crop = tf.stack([processors.resize_rgb(processors.crop(frames, w), config.crop_size)
                           for w in windows])
      features[records.RGB] = _views(per_crop, config, config.num_clips)
    if config.with_flow:
      clipped = _raw_flow(flow, flow_bound)
      per_crop = tf.stack([processors.crop_and_resize(clipped, w, config.crop_size,
                                                      is_flow=True) for w in windows])
      features[records.FLOW] = processors.scale_flow(
          _views(per_crop, config, config.num_clips), flow_bound)
    return features

  return fn
