"""Crop boxes of video clips: random (training), central and three-crop (evaluation).

Boxes are normalized [y0, x0, y1, x1] float32 (fractions of height and width), so one box
applies to modalities stored at different resolutions (RGB frames and flow planes);
`box_to_pixels` rounds it to integer (y, x, height, width) for a given frame size. A random box
is drawn once per clip into the shared `state` (see `processors`): RGB and flow get the same.
"""

import math
from typing import Any, Dict, Optional, Sequence

import tensorflow as tf

from d3d_tf.common import defaults

ProcessorState = Dict[str, Any]

# The key of the crop box in the shared per-clip state.
CROP_BOX_STATE = "crop_box"

DEFAULT_ASPECT_RATIO_RANGE = (3.0 / 4.0, 4.0 / 3.0)


def random_crop_params(
    height,
    width,
    min_area: float = defaults.MIN_AREA,
    aspect_ratio_range: Sequence[float] = DEFAULT_ASPECT_RATIO_RANGE,
    seed=None,
    state: Optional[ProcessorState] = None) -> tf.Tensor:
  """Draws one random scale-and-aspect crop box (Inception style), shared through `state`.

  The box covers a uniform fraction in [min_area, 1] of the frame area with a log-uniform
  aspect ratio (width / height) in `aspect_ratio_range`; a side longer than the frame is
  clipped to it (which changes the aspect), and the position is uniform. One draw, no
  rejection loop, so the cost is fixed.

  Args:
    height: Frame height (scalar).
    width: Frame width (scalar).
    min_area: Smallest fraction of the frame area to keep.
    aspect_ratio_range: (min, max) of width / height.
    seed: Stateless seed, int [2].
    state: Per-clip dict; when it already holds a box it is returned unchanged, otherwise the
      new box is stored in it under `CROP_BOX_STATE`.

  Returns:
    float32 [4] normalized box (y0, x0, y1, x1).
  """
  if state is not None and CROP_BOX_STATE in state:
    return state[CROP_BOX_STATE]
  if not 0.0 < min_area <= 1.0:
    raise ValueError(f"min_area must be in (0, 1]. Received: min_area={min_area}")
  h = tf.cast(height, tf.float32)
  w = tf.cast(width, tf.float32)
  u = tf.random.stateless_uniform([4], seed=seed)
  area = (min_area + (1.0 - min_area) * u[0]) * h * w
  log_lo, log_hi = math.log(aspect_ratio_range[0]), math.log(aspect_ratio_range[1])
  aspect = tf.exp(log_lo + (log_hi - log_lo) * u[1])
  crop_h = tf.clip_by_value(tf.round(tf.sqrt(area / aspect)), 1.0, h)
  crop_w = tf.clip_by_value(tf.round(tf.sqrt(area * aspect)), 1.0, w)
  return _place_crop(h, w, crop_h, crop_w, u[2], u[3], state)


def _place_crop(h, w, crop_h, crop_w, uy, ux, state: Optional[ProcessorState]) -> tf.Tensor:
  """The normalized box of a crop_h x crop_w crop at the uniform draws (uy, ux) in [0, 1)."""
  y = tf.minimum(tf.floor(uy * (h - crop_h + 1.0)), h - crop_h)
  x = tf.minimum(tf.floor(ux * (w - crop_w + 1.0)), w - crop_w)
  box = tf.stack([y / h, x / w, (y + crop_h) / h, (x + crop_w) / w])
  if state is not None:
    state[CROP_BOX_STATE] = box
  return box


def random_fixed_crop_params(height, width, size: int, seed=None,
                             state: Optional[ProcessorState] = None) -> tf.Tensor:
  """Draws a `size` x `size` pixel crop at a uniform position (I3D / S3D training: 224 from
  frames stored at short side 256), shared through `state` like `random_crop_params`.

  No scale jitter and no resize: the crop leaves the pipeline as it was stored (uint8 clips).
  A frame smaller than `size` fails with an error that says how to convert the records.
  """
  if state is not None and CROP_BOX_STATE in state:
    return state[CROP_BOX_STATE]
  check = tf.debugging.assert_greater_equal(
      tf.minimum(height, width), size,
      message=f"Frames smaller than the crop ({size} px): uint8 clips are cut without a "
      f"resize, so convert the records at --short_side >= {size} (or lower --crop_size).")
  with tf.control_dependencies([check]):
    h = tf.cast(height, tf.float32)
  w = tf.cast(width, tf.float32)
  u = tf.random.stateless_uniform([2], seed=seed)
  return _place_crop(h, w, float(size), float(size), u[0], u[1], state)


def center_crop_box(height, width, fraction: float = 1.0) -> tf.Tensor:
  """Normalized box of the central square whose side is `fraction` of the short side."""
  return three_crop_boxes(height, width, fraction)[1]


def three_crop_boxes(height, width, fraction: float = 1.0) -> tf.Tensor:
  """Normalized boxes [3, 4] of three squares along the long side: start, centre, end.

  Each square's side is `fraction` of the short side and it is centred on the short axis;
  along the long axis (width when W >= H) the squares touch the start, the centre and the end
  of the frame (the 3-crop testing of the non-local / SlowFast papers).
  """
  h = tf.cast(height, tf.float32)
  w = tf.cast(width, tf.float32)
  side = tf.maximum(tf.round(tf.minimum(h, w) * fraction), 1.0)
  fracs = tf.constant([0.0, 0.5, 1.0])
  def positions(length):
    return tf.floor(fracs * (length - side))
  landscape = w >= h
  ys = tf.where(landscape, tf.fill([3], tf.floor((h - side) / 2.0)), positions(h))
  xs = tf.where(landscape, positions(w), tf.fill([3], tf.floor((w - side) / 2.0)))
  return tf.stack([ys / h, xs / w, (ys + side) / h, (xs + side) / w], axis=1)


def box_to_pixels(box: tf.Tensor, height, width) -> tf.Tensor:
  """Normalized (y0, x0, y1, x1) -> int32 (y, x, crop_height, crop_width) inside the frame."""
  h = tf.cast(height, tf.float32)
  w = tf.cast(width, tf.float32)
  y0 = tf.round(box[0] * h)
  x0 = tf.round(box[1] * w)
  y1 = tf.round(box[2] * h)
  x1 = tf.round(box[3] * w)
  y0 = tf.clip_by_value(y0, 0.0, h - 1.0)
  x0 = tf.clip_by_value(x0, 0.0, w - 1.0)
  crop_h = tf.clip_by_value(y1 - y0, 1.0, h - y0)
  crop_w = tf.clip_by_value(x1 - x0, 1.0, w - x0)
  return tf.cast(tf.stack([y0, x0, crop_h, crop_w]), tf.int32)
