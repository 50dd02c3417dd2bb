"""The training crop's resize moved from the input pipeline to the accelerator, exactly.

The default training clip is a random-area crop (scale jitter) resized to S x S on the CPU
and written as float32: the resize, the normalisation and four bytes a value cost the pipeline
about as much as decoding. Here the CPU decodes the crop window, flips it and leaves it uint8;
batches pad the crops to the batch's largest (`padded_batch`, in the batching copy), and the
model resizes them on the device (`model_input`). What the resize needs travels with them:

  * tf.image.resize's bilinear kernel (half-pixel centres, no antialias) reads, for output
    line i, source lines floor(p_i) and ceil(p_i) around p_i = (i + 0.5) * e / S - 0.5
    (clamped to the crop's extent e), with weight p_i - floor(p_i). A crop of at most 2S lines
    is kept whole; a longer one (downscaling by more than 2) keeps just those 2S lines, as
    pairs. So a crop never exceeds 2S x 2S, and a crop of S lines or fewer stays that small.
  * `RESIZE_LINES` int32 [4, S] (row floor, row ceil, column floor, column ceil, into the kept
    crop), `RESIZE_WEIGHTS` float32 [2, S] (row and column weights), computed as the CPU kernel
    computes them; `FLOW_SCALE` float32 [2]: flow's resize factors (S / w, S / h), x negated
    when flipped, 0 for a clip without flow planes. RGB and flow share them (one crop, flip).

The device gathers the four neighbours and interpolates with the kernel's formula, on values
normalised to [-1, 1] as the CPU pipeline normalises them: the clips equal the CPU pipeline's
to float rounding (`tests/data/test_device_resize.py`).
"""

import tensorflow as tf

from d3d_tf.data import processors

# Feature names of the per-clip resize tables (see the module docstring).
RESIZE_LINES = "resize_lines"
RESIZE_WEIGHTS = "resize_weights"
FLOW_SCALE = "flow_scale"
TABLES = (RESIZE_LINES, RESIZE_WEIGHTS, FLOW_SCALE)


def max_lines(output_size: int) -> int:
  """Lines a kept crop has at most per axis: the most a bilinear resize to S reads."""
  return 2 * output_size


def source_lines(extent, output_size: int):
  """tf.image.resize's bilinear source lines for `output_size` outputs over `extent` lines.

  Returns (lower, upper) int32 [S] and lerp float32 [S], as the CPU kernel computes them
  (half-pixel centres: p = (i + 0.5) * (e / S) - 0.5; lower = max(floor(p), 0), upper =
  min(ceil(p), e - 1), lerp = p - floor(p)).
  """
  extent = tf.cast(extent, tf.int32)
  scale = tf.cast(extent, tf.float32) / float(output_size)
  position = (tf.range(output_size, dtype=tf.float32) + 0.5) * scale - 0.5
  floor = tf.floor(position)
  lower = tf.maximum(tf.cast(floor, tf.int32), 0)
  upper = tf.minimum(tf.cast(tf.math.ceil(position), tf.int32), extent - 1)
  return lower, upper, position - floor


def _lines_kept(extent, output_size: int):
  """(source lines kept or None for all, lower, upper, lerp into the kept lines) of one axis."""
  lower, upper, lerp = source_lines(extent, output_size)
  paired = extent > max_lines(output_size)
  pair = tf.range(output_size, dtype=tf.int32) * 2
  kept = tf.reshape(tf.stack([lower, upper], axis=1), [-1])
  return (kept, tf.where(paired, pair, lower), tf.where(paired, pair + 1, upper), lerp, paired)


def keep_lines(crop: tf.Tensor, output_size: int) -> tf.Tensor:
  """uint8 crop [T, h, w, C] -> the lines the resize reads: [T, min(h, 2S), min(w, 2S), C]."""
  for axis in (1, 2):
    kept, _, _, _, paired = _lines_kept(tf.shape(crop)[axis], output_size)
    crop = tf.cond(paired, lambda c=crop, k=kept, a=axis: tf.gather(c, k, axis=a),
                   lambda c=crop: c)
  return crop


def kept_shape(window: tf.Tensor, output_size: int) -> tf.Tensor:
  """int32 [2]: (rows, columns) `keep_lines` leaves of a pixel window (y, x, h, w)."""
  return tf.minimum(window[2:4], max_lines(output_size))


def resize_tables(window: tf.Tensor, flip, flow_present, output_size: int):
  """{RESIZE_LINES, RESIZE_WEIGHTS, FLOW_SCALE} of a clip's pixel window (y, x, h, w)."""
  _, y_lower, y_upper, y_lerp, _ = _lines_kept(window[2], output_size)
  _, x_lower, x_upper, x_lerp, _ = _lines_kept(window[3], output_size)
  factors = processors.flow_resize_factors(window[2], window[3], output_size)
  sign = tf.where(tf.cast(flip, tf.bool), tf.constant([-1.0, 1.0]), tf.constant([1.0, 1.0]))
  return {RESIZE_LINES: tf.stack([y_lower, y_upper, x_lower, x_upper]),
          RESIZE_WEIGHTS: tf.stack([y_lerp, x_lerp]),
          FLOW_SCALE: factors * sign * tf.cast(flow_present, tf.float32)}


def resize_crops(crops: tf.Tensor, lines: tf.Tensor, weights: tf.Tensor,
                 flow_scale=None) -> tf.Tensor:
  """uint8 crops [B, T, h, w, C] + their tables -> float32 [B, T, S, S, C] model input.

  RGB: the crop resized and normalised to [-1, 1]. Flow (`flow_scale` [B, 2] given): quantized
  planes in units of the bound, resized, times `flow_scale`. As the CPU pipeline computes
  them, to float rounding.
  """
  top = processors.normalize_rgb(tf.gather(crops, lines[:, 0], axis=2, batch_dims=1))
  bottom = processors.normalize_rgb(tf.gather(crops, lines[:, 1], axis=2, batch_dims=1))
  x_lerp = weights[:, 1, None, None, :, None]

  def along_x(rows):
    left = tf.gather(rows, lines[:, 2], axis=3, batch_dims=1)
    right = tf.gather(rows, lines[:, 3], axis=3, batch_dims=1)
    return left + (right - left) * x_lerp

  top, bottom = along_x(top), along_x(bottom)
  out = top + (bottom - top) * weights[:, 0, None, :, None, None]
  if flow_scale is None:
    return out
  return out * flow_scale[:, None, None, None, :]


def model_input(features, key: str) -> tf.Tensor:
  """The float32 model input of `features[key]` ("rgb" or "flow"), whatever the pipeline wrote.

  Crops with resize tables (`resize_on_device`) are resized here (`resize_crops`); other uint8
  clips (`uint8_clips`) are normalised (`processors.to_unit_on_device`); float clips pass.
  """
  clip = features[key]
  if RESIZE_LINES in features and clip.dtype == tf.uint8:
    flow_scale = features[FLOW_SCALE] if key == "flow" else None
    return resize_crops(clip, features[RESIZE_LINES], features[RESIZE_WEIGHTS], flow_scale)
  return processors.to_unit_on_device(clip)
