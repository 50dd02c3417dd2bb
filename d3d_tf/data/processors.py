"""Small in-graph functions that sample, decode and augment video clips (dmvr style).

Each function does one thing to a tensor and takes its parameters explicitly, so a pipeline is
a readable composition and every step is unit-testable. D3D distils a flow teacher into an RGB
student, so the teacher must see the SAME clip: every random choice that has to agree across
modalities (crop box, flip) is drawn once per clip into a shared `state` dict, and the first
modality to ask draws it while the others reuse it. All randomness is stateless: a function
takes a `seed` (int32/int64 [2] tensor) and gives the same answer for the same seed.

Conventions:
  * Frames are [T, H, W, C]; flow is [T, H, W, 2] = (dx, dy) from frame i to frame i + 1,
    either in pixels (float) or quantized as in the records (uint8, see `dequantize_flow`).
  * uint8 data is flipped and cropped before resizing to float, where it is 4x smaller.
  * Crop boxes (`crop_boxes`) are normalized [y0, x0, y1, x1]; the functions here take the
    integer pixel window (y, x, height, width) that `crop_boxes.box_to_pixels` makes of one.
  * Short videos loop: clip index t is `(offset + t * stride) mod num_frames`.
"""

import sys
from typing import Optional, Tuple

import tensorflow as tf

from d3d_tf.data import flow_quantization
from d3d_tf.data.crop_boxes import ProcessorState

# Key of the flip in the shared per-clip state (the crop box's: `crop_boxes.CROP_BOX_STATE`).
FLIP_STATE = "flip_left_right"


# ----------------------------------------------------------------------------
# Temporal sampling.
# ----------------------------------------------------------------------------


def clip_span(clip_length: int, stride: int) -> int:
  """Number of source frames a clip of `clip_length` frames at `stride` covers."""
  return (clip_length - 1) * stride + 1


def sample_clip_indices(num_frames, clip_length: int, stride: int = 1, offset=0) -> tf.Tensor:
  """Frame indices of one clip: `(offset + t * stride) mod num_frames` for t < clip_length.

  The modulo is the short-video rule: a video shorter than the clip span loops back to its
  first frame (a 1-frame video repeats that frame), so every video yields a full clip.

  Args:
    num_frames: Number of frames in the video (scalar, > 0).
    clip_length: Number of frames T in the clip.
    stride: Temporal stride between sampled frames.
    offset: Index of the first frame.

  Returns:
    int32 [clip_length] frame indices.
  """
  num_frames = tf.cast(num_frames, tf.int32)
  steps = tf.cast(offset, tf.int32) + tf.range(clip_length, dtype=tf.int32) * stride
  indices = tf.math.floormod(steps, tf.maximum(num_frames, 1))
  indices.set_shape([clip_length])
  return indices


def max_clip_offset(num_frames, clip_length: int, stride: int = 1) -> tf.Tensor:
  """Largest offset whose clip fits without looping; 0 when the video is too short."""
  num_frames = tf.cast(num_frames, tf.int32)
  return tf.maximum(num_frames - clip_span(clip_length, stride), 0)


def sample_random_offset(num_frames, clip_length: int, stride: int, seed) -> tf.Tensor:
  """Uniform random first-frame index in [0, max_clip_offset] (inclusive), int32 scalar."""
  max_offset = max_clip_offset(num_frames, clip_length, stride)
  return tf.random.stateless_uniform(
      [], seed=seed, minval=0, maxval=max_offset + 1, dtype=tf.int32)


def central_offset(num_frames, clip_length: int, stride: int = 1) -> tf.Tensor:
  """First-frame index of the clip centred in the video (0 when the video is too short)."""
  return max_clip_offset(num_frames, clip_length, stride) // 2


def linspace_offsets(num_frames, clip_length: int, stride: int, num_clips: int) -> tf.Tensor:
  """First-frame indices of `num_clips` evenly spaced clips, int32 [num_clips].

  With K > 1 clips, clip k starts at `round(k * max_offset / (K - 1))`, so the first clip
  starts at frame 0 and the last one ends at the last frame; a single clip is the central one.
  When the video is shorter than a clip, every offset is 0 (and the clips loop).
  """
  if num_clips < 1:
    raise ValueError(f"num_clips must be >= 1. Received: num_clips={num_clips}")
  if num_clips == 1:
    return tf.reshape(central_offset(num_frames, clip_length, stride), [1])
  max_offset = tf.cast(max_clip_offset(num_frames, clip_length, stride), tf.float32)
  offsets = tf.linspace(0.0, max_offset, num_clips)
  return tf.cast(tf.round(offsets), tf.int32)


def flow_indices(frame_indices: tf.Tensor, num_frames) -> tf.Tensor:
  """Flow-plane index for each frame index: flow i goes from frame i to frame i + 1.

  A video of N frames has N - 1 flow planes, so the last frame reuses the last plane (N - 2):
  the motion out of the last frame is taken to equal the motion into it. Callers must handle
  N == 1 (no planes; the pipelines use zero flow).
  """
  num_frames = tf.cast(num_frames, frame_indices.dtype)
  return tf.clip_by_value(frame_indices, 0, tf.maximum(num_frames - 2, 0))


# ----------------------------------------------------------------------------
# Decoding.
# ----------------------------------------------------------------------------


def jpeg_shape(encoded: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor]:
  """(height, width) of one JPEG from its header, without decoding it."""
  shape = tf.io.extract_jpeg_shape(encoded)
  return shape[0], shape[1]


def decode_jpeg_frames(encoded: tf.Tensor, crop_window: Optional[tf.Tensor] = None) -> tf.Tensor:
  """Decodes JPEG frames [T] -> uint8 [T, H, W, 3].

  Args:
    encoded: string [T], one JPEG per frame (all the same size).
    crop_window: Optional int32 [4] (y, x, height, width): decode only this window
      (`tf.io.decode_and_crop_jpeg`), which is cheaper than decoding then slicing. Pixels on
      the window's border can differ by a few levels from decode-then-slice (chroma
      upsampling at the edge); the inside is identical.

  Returns:
    uint8 [T, H, W, 3] (H, W of the window when one is given).
  """
  if crop_window is None:
    fn = lambda x: tf.io.decode_jpeg(x, channels=3)
  else:
    fn = lambda x: tf.io.decode_and_crop_jpeg(x, crop_window, channels=3)
  frames = tf.map_fn(fn, encoded, fn_output_signature=tf.TensorSpec([None, None, 3], tf.uint8))
  return frames


def _decode_plane_pairs(x_encoded: tf.Tensor, y_encoded: tf.Tensor, decode_one) -> tf.Tensor:
  """`decode_one` (encoded -> uint8 [h, w, 1]) over the x and y planes [T] -> uint8 [T, h, w, 2]."""
  num = tf.shape(x_encoded)[0]
  planes = tf.map_fn(decode_one, tf.concat([x_encoded, y_encoded], axis=0),
                     fn_output_signature=tf.TensorSpec([None, None, 1], tf.uint8))
  return pair_planes(planes[:num, ..., 0], planes[num:, ..., 0])


def pair_planes(x: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
  """uint8 planes x, y [T, h, w] -> uint8 [T, h, w, 2], (x, y) per pixel; exact.

  Built as one 2-byte word per pixel and reinterpreted as bytes: a last-axis concat or stack of
  one-channel tensors moves a byte at a time and costs ~4x as much (64 plane pairs of 190x190:
  39 instead of 9 CPU-ms).
  """
  low, high = (x, y) if sys.byteorder == "little" else (y, x)
  words = tf.bitwise.bitwise_or(tf.cast(low, tf.uint16),
                                tf.bitwise.left_shift(tf.cast(high, tf.uint16), 8))
  return tf.bitcast(words, tf.uint8)


def decode_flow_planes(x_encoded: tf.Tensor, y_encoded: tf.Tensor) -> tf.Tensor:
  """Decodes quantized flow planes (PNG or JPEG) [T] x 2 -> uint8 [T, H, W, 2].

  Values stay quantized (0..255 for [-B, B] pixels): crop, flip and resize them first and
  `dequantize_flow` the smaller result.
  """
  return _decode_plane_pairs(
      x_encoded, y_encoded, lambda x: tf.io.decode_image(x, channels=1, expand_animations=False))


def decode_flow_window(x_encoded: tf.Tensor, y_encoded: tf.Tensor, window: tf.Tensor,
                       is_jpeg) -> tf.Tensor:
  """The pixel window (y, x, height, width) of quantized flow planes [T] x 2 -> uint8 [T, h, w, 2].

  JPEG planes (`is_jpeg`, a bool tensor: the record's flow/format) decode only the window, as RGB
  frames do; PNG has no such decoder, so its planes are decoded whole and cut.
  """

  jpeg = lambda: _decode_plane_pairs(
      x_encoded, y_encoded, lambda x: tf.io.decode_and_crop_jpeg(x, window, channels=1))
  return tf.cond(tf.cast(is_jpeg, tf.bool), jpeg,
                 lambda: crop(decode_flow_planes(x_encoded, y_encoded), window))


def dequantize_flow(quantized: tf.Tensor, bound) -> tf.Tensor:
  """Quantized flow (uint8 or resized float) -> float32 pixels: q * 2B / 255 - B.

  The records' inverse quantization (`records.dequantize_flow`). It is affine, so it commutes
  with bilinear resizing: resizing quantized values and then dequantizing is exact.
  """
  return flow_quantization.dequantize_flow(tf.cast(quantized, tf.float32),
                                           tf.cast(bound, tf.float32))


def dequantize_flow_unit(quantized: tf.Tensor) -> tf.Tensor:
  """Quantized uint8 flow -> float32 in units of the bound B: `dequantize_flow(q, B) / B`.

  That is q * 2 / 255 - 1, the map `normalize_rgb_uint8` makes in one pass: the flow model's
  input (see `scale_flow`) without a cast, a scale, a shift and a division over the clip.
  """
  return normalize_rgb_uint8(quantized)


# ----------------------------------------------------------------------------
# Spatial crops.
# ----------------------------------------------------------------------------


# The crop boxes live in `crop_boxes`; the pixel ops on them follow.


def crop(frames: tf.Tensor, window: tf.Tensor) -> tf.Tensor:
  """Slices the pixel window (y, x, height, width) out of frames [T, H, W, C]."""
  return frames[:, window[0]:window[0] + window[2], window[1]:window[1] + window[3], :]


def resize(frames: tf.Tensor, output_size: int, method: str = "bilinear") -> tf.Tensor:
  """Resizes frames [T, h, w, C] (any dtype) to float32 [T, S, S, C], half-pixel centres."""
  return tf.image.resize(frames, [output_size, output_size], method=method)


def flow_resize_factors(height, width, output_size: int) -> tf.Tensor:
  """float32 [2] (S / w, S / h): what resizing an h x w crop to S x S does to (dx, dy).

  With half-pixel centres a motion of d pixels becomes d * S / w pixels along x and d * S / h
  along y, so flow is multiplied by these to stay in pixels of the output frame.
  """
  return tf.stack([output_size / tf.cast(width, tf.float32),
                   output_size / tf.cast(height, tf.float32)])


def crop_and_resize(frames: tf.Tensor, window: tf.Tensor, output_size: int,
                    is_flow: bool = False, method: str = "bilinear") -> tf.Tensor:
  """Crops the pixel window (y, x, height, width) and resizes it to a square of `output_size`.

  Apply the same box (from `crop_boxes`, via `box_to_pixels`) to
  every modality of a clip. For flow in pixels (`is_flow=True`) the values are rescaled with
  the image (`flow_resize_factors`).
  """
  out = resize(crop(frames, window), output_size, method=method)
  if is_flow:
    out = out * flow_resize_factors(window[2], window[3], output_size)
  return out


# ----------------------------------------------------------------------------
# Flips and value scaling.
# ----------------------------------------------------------------------------


def random_flip_params(seed, probability: float = 0.5,
                       state: Optional[ProcessorState] = None) -> tf.Tensor:
  """Draws whether to flip the clip left-right (bool scalar), shared through `state`."""
  if state is not None and FLIP_STATE in state:
    return state[FLIP_STATE]
  flip = tf.random.stateless_uniform([], seed=seed) < probability
  if state is not None:
    state[FLIP_STATE] = flip
  return flip


def flip_left_right(frames: tf.Tensor, is_flow: bool = False) -> tf.Tensor:
  """Mirrors frames [T, H, W, C] horizontally; for flow also negates the x component.

  Flip uint8 frames before resizing: it moves 4x fewer bytes than flipping float output.
  Quantized uint8 flow negates x as `255 - q`, exact under the records' symmetric
  quantization (q -> -dequantized(q)).
  """
  flipped = _reverse_width(frames)
  if is_flow:
    if frames.dtype == tf.uint8:  # 255 - q is q XOR 255: on the x byte of each pixel's word.
      x_mask = 0x00FF if sys.byteorder == "little" else 0xFF00
      flipped = tf.bitcast(tf.bitwise.bitwise_xor(tf.bitcast(flipped, tf.uint16),
                                                  tf.constant(x_mask, tf.uint16)), tf.uint8)
    else:
      flipped = flipped * tf.constant([-1.0, 1.0], flipped.dtype)
  return tf.ensure_shape(flipped, frames.shape)


# Unsigned words as wide as a pixel of 2, 4 or 8 bytes.
_PIXEL_WORDS = {2: tf.uint16, 4: tf.uint32, 8: tf.uint64}


def _reverse_width(frames: tf.Tensor) -> tf.Tensor:
  """Reverses the width axis of frames [T, H, W, C] (the CPU's fast paths, about 4x faster).

  A 3-D view reverses several times faster than the 4-D tensor, and a pixel of 2, 4 or 8 bytes
  (quantized flow: 2) moves fastest as one word.
  """
  shape = tf.shape(frames)
  channels = frames.shape[-1]
  word = _PIXEL_WORDS.get(frames.dtype.size * channels) if channels is not None else None
  if word is None:
    return tf.reshape(tf.reverse(tf.reshape(frames, [-1, shape[2], shape[3]]), axis=[1]), shape)
  words = tf.reshape(tf.bitcast(frames, word), [-1, shape[2]])
  return tf.reshape(tf.bitcast(tf.reverse(words, axis=[1]), frames.dtype), shape)


def maybe_flip_left_right(frames: tf.Tensor, flip, is_flow: bool = False) -> tf.Tensor:
  """`flip_left_right(frames)` when the bool tensor `flip` is true, else `frames`."""
  return tf.cond(tf.cast(flip, tf.bool), lambda: flip_left_right(frames, is_flow),
                 lambda: tf.identity(frames))


def normalize_rgb(frames: tf.Tensor) -> tf.Tensor:
  """Maps pixel values in [0, 255] (uint8 or float) to float32 in [-1, 1] (the S3D input).

  Not clipped: uint8 input and bilinear/area resizes of it stay inside [0, 255].
  """
  return tf.cast(frames, tf.float32) * (2.0 / 255.0) - 1.0


def normalize_rgb_uint8(frames: tf.Tensor) -> tf.Tensor:
  """`normalize_rgb` of uint8 frames in one pass over the data (same values, bit for bit).

  The cast, multiply and subtract are three passes over a clip of tens of megabytes; the
  Dequantize op (MIN_COMBINED: min + q * (max - min) / 255) is the same affine map fused with
  the cast. Input pipelines only: it runs on the CPU.
  """
  return tf.raw_ops.Dequantize(input=tf.bitcast(frames, tf.quint8), min_range=-1.0,
                               max_range=1.0, mode="MIN_COMBINED")


def to_unit_on_device(clip: tf.Tensor) -> tf.Tensor:
  """Model input from a uint8 clip (`uint8_clips`): RGB or quantized flow -> float32 [-1, 1].

  Both modalities take the same map: unresized quantized flow over the bound is q / 127.5 - 1
  (`dequantize_flow_unit`). `normalize_rgb`'s ops, which every device has (the Dequantize op
  of `normalize_rgb_uint8` is CPU-only), with the same values bit for bit. Float input (the
  default pipelines, evaluation, users' own) passes unchanged.
  """
  return normalize_rgb(clip) if clip.dtype == tf.uint8 else clip


def resize_rgb(frames: tf.Tensor, output_size: int) -> tf.Tensor:
  """uint8 frames [T, h, w, 3] -> float32 [T, S, S, 3] in [-1, 1]: bilinear resize + normalize.

  Normalizing is affine and the bilinear weights sum to 1, so the two steps commute and the
  order only sets the cost (the results agree to float rounding). Up to ~3x the output's pixels
  the crop is normalized first: one pass, and the float resize kernel runs ~2x faster than the
  uint8 one (64x224x224 clips: 14 instead of 27 ms). A larger crop is resized first and the
  small output normalized.
  """
  shape = tf.shape(frames)
  small = shape[1] * shape[2] <= 3 * output_size * output_size
  return tf.cond(small,
                 lambda: resize(normalize_rgb_uint8(frames), output_size),
                 lambda: normalize_rgb(resize(frames, output_size)))


def scale_flow(flow: tf.Tensor, bound) -> tf.Tensor:
  """Flow in pixels -> flow-model input: divided by the record's quantization bound B.

  Stored flow is clipped to [-B, B] pixels, so at the stored resolution this gives [-1, 1],
  the same range as RGB input. A crop that is upsampled by the resize (crop smaller than the
  output) scales the motion up too, so values can exceed 1 in magnitude; they are not clipped,
  which keeps the flow consistent with the RGB pixels the student sees.
  """
  return tf.cast(flow, tf.float32) / tf.cast(bound, tf.float32)
