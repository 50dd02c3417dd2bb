"""The training crop's resize moved from the input pipeline to the accelerator, exactly.

The default training clip is a random-area crop (scale jitter) resized to S x S on the CPU
and written as float32: the resize, the normalisation and four bytes a value cost the
pipeline about as much as decoding. Here the CPU only decodes the crop window, flips it and
writes it, uint8, into a fixed buffer of 2S x 2S pixels (batching needs one shape); the model
resizes it on the device (`model_input`). The buffer holds every source line the resize reads:

  * tf.image.resize's bilinear kernel (half-pixel centres, no antialias) reads, for output
    line i, the two source lines floor(p_i) and ceil(p_i) around p_i = (i + 0.5) * e / S - 0.5
    (clamped to the crop's extent e). A crop of at most 2S lines is stored whole, from the
    buffer's top-left corner;
  * a longer one (only past 2S, i.e. downscaling by more than 2) keeps just those 2S lines,
    as pairs (line 2i: floor, line 2i + 1: ceil).

The device gathers the same four neighbours and interpolates with the kernel's weights and
formula, on values normalised to [-1, 1] as the CPU pipeline normalises them, so the clips
equal the CPU pipeline's to float rounding (`tests/data/test_device_resize.py`). Flow is
scaled by the resize factors (S / w, S / h) with x negated when flipped, as on the CPU.

The per-clip feature `CROP_EXTENT` (int32 [4]: crop height, crop width, flipped, flow
present) travels with the buffers; RGB and flow share it (one crop, one flip).
"""

import tensorflow as tf

from d3d_tf.data import processors

# Feature name of the per-clip (height, width, flipped, flow present) of the buffers' crop.
CROP_EXTENT = "crop_extent"


def buffer_side(output_size: int) -> int:
  """Lines a buffer keeps per axis: the most a bilinear resize to `output_size` reads."""
  return 2 * output_size


def source_lines(extent, output_size: int):
  """tf.image.resize's bilinear source lines for `output_size` outputs over `extent` lines.

  Args:
    extent: int32 crop extents (any shape [...]).
    output_size: S.

  Returns:
    (lower, upper) int32 [..., S] and lerp float32 [..., S], computed as the CPU kernel does
    (half-pixel centres: p = (i + 0.5) * (e / S) - 0.5; lower = max(floor(p), 0), upper =
    min(ceil(p), e - 1), lerp = p - floor(p)).
  """
  extent = tf.convert_to_tensor(extent, tf.int32)[..., None]
  scale = tf.cast(extent, tf.float32) / float(output_size)
  position = (tf.range(output_size, dtype=tf.float32) + 0.5) * scale - 0.5
  floor = tf.floor(position)
  lower = tf.maximum(tf.cast(floor, tf.int32), 0)
  upper = tf.minimum(tf.cast(tf.math.ceil(position), tf.int32), extent - 1)
  return lower, upper, position - floor


def _keep_lines(frames: tf.Tensor, axis: int, output_size: int) -> tf.Tensor:
  """The lines of `axis` (1: rows, 2: columns) the resize reads, when there are more than 2S."""
  extent = tf.shape(frames)[axis]

  def pairs():
    lower, upper, _ = source_lines(extent, output_size)
    return tf.gather(frames, tf.reshape(tf.stack([lower, upper], axis=1), [-1]), axis=axis)

  return tf.cond(extent > buffer_side(output_size), pairs, lambda: frames)


def pack_crop(crop: tf.Tensor, output_size: int) -> tf.Tensor:
  """uint8 crop [T, h, w, C] -> uint8 buffer [T, 2S, 2S, C] for `model_input` (CPU side).

  Padded with zeros by row-major concatenations (memory copies; `tf.pad` is several times
  slower on uint8 frames).
  """
  side = buffer_side(output_size)
  crop = _keep_lines(_keep_lines(crop, 1, output_size), 2, output_size)
  shape = tf.shape(crop)
  length, height, width, channels = shape[0], shape[1], shape[2], crop.shape[-1]
  rows = tf.reshape(crop, [length * height, width * channels])
  rows = tf.concat([rows, tf.zeros([length * height, (side - width) * channels], tf.uint8)], 1)
  frames = tf.reshape(rows, [length, height * side * channels])
  frames = tf.concat(
      [frames, tf.zeros([length, (side - height) * side * channels], tf.uint8)], 1)
  return tf.reshape(frames, [length, side, side, channels])


def crop_extent(window: tf.Tensor, flip, flow_present=True) -> tf.Tensor:
  """int32 [4] (height, width, flipped, flow present) of a pixel window (y, x, h, w)."""
  return tf.stack([window[2], window[3], tf.cast(flip, tf.int32),
                   tf.cast(flow_present, tf.int32)])


def _device_lines(extent: tf.Tensor, output_size: int):
  """`source_lines` into the buffer: a crop longer than 2S keeps pairs (2i, 2i + 1)."""
  lower, upper, lerp = source_lines(extent, output_size)
  paired = (extent > buffer_side(output_size))[:, None]
  pair = tf.range(output_size, dtype=tf.int32)[None] * 2
  return tf.where(paired, pair, lower), tf.where(paired, pair + 1, upper), lerp


def resize_buffers(buffers: tf.Tensor, extent: tf.Tensor, is_flow: bool) -> tf.Tensor:
  """uint8 buffers [B, T, 2S, 2S, C] + `CROP_EXTENT` [B, 4] -> float32 [B, T, S, S, C] model input.

  RGB: the crop resized and normalised to [-1, 1]. Flow: quantized planes to units of the
  bound, resized, times the resize factors (S / w, S / h), x negated when flipped; zero for a
  clip without flow planes. As the CPU pipeline computes them, to float rounding.
  """
  size = buffers.shape[2] // 2
  extent = tf.cast(extent, tf.int32)
  height, width = extent[:, 0], extent[:, 1]
  y_lower, y_upper, y_lerp = _device_lines(height, size)
  x_lower, x_upper, x_lerp = _device_lines(width, size)
  top = processors.normalize_rgb(tf.gather(buffers, y_lower, axis=2, batch_dims=1))
  bottom = processors.normalize_rgb(tf.gather(buffers, y_upper, axis=2, batch_dims=1))
  x_lerp = x_lerp[:, None, None, :, None]

  def along_x(rows):
    left = tf.gather(rows, x_lower, axis=3, batch_dims=1)
    right = tf.gather(rows, x_upper, axis=3, batch_dims=1)
    return left + (right - left) * x_lerp

  top, bottom = along_x(top), along_x(bottom)
  out = top + (bottom - top) * y_lerp[:, None, :, None, None]
  if not is_flow:
    return out
  factors = tf.stack([size / tf.cast(width, tf.float32), size / tf.cast(height, tf.float32)], 1)
  sign = tf.where(extent[:, 2:3] > 0, tf.constant([[-1.0, 1.0]]), tf.constant([[1.0, 1.0]]))
  scale = factors * sign * tf.cast(extent[:, 3:4], tf.float32)
  return out * scale[:, None, None, None, :]


def model_input(features, key: str) -> tf.Tensor:
  """The float32 model input of `features[key]` ("rgb" or "flow"), whatever the pipeline wrote.

  Buffers with a `CROP_EXTENT` are resized here (`resize_buffers`); other uint8 clips
  (`uint8_clips`) are normalised (`processors.to_unit_on_device`); float clips pass unchanged.
  """
  clip = features[key]
  if CROP_EXTENT in features and clip.dtype == tf.uint8:
    return resize_buffers(clip, features[CROP_EXTENT], is_flow=key == "flow")
  return processors.to_unit_on_device(clip)
