"""THE inference preprocessing of raw uint8 frames, shared by evaluation, predict and export.

Evaluation on records (`builders.make_clip_fn` in EVAL mode, one centre crop) takes the
central square whose side is `crop_fraction` of the short side, resizes it bilinearly to
`crop_size` and maps [0, 255] to [-1, 1]. This module composes the very same `processors` functions for frames that
arrive raw (a video file in `predict`, a request in the exported SavedModel), so a clip gets
the same numbers whichever way it reaches the model. Only TF core image ops are used
(Slice, ResizeBilinear, DecodeJpeg), which every TF Serving release since 2.x has.
"""

import tensorflow as tf

from d3d_tf.common import defaults
from d3d_tf.data import crop_boxes
from d3d_tf.data import processors

DEFAULT_CROP_SIZE = 112
DEFAULT_CROP_FRACTION = defaults.CROP_FRACTION


def preprocess_frames(frames: tf.Tensor, crop_size: int = DEFAULT_CROP_SIZE,
                      crop_fraction: float = DEFAULT_CROP_FRACTION) -> tf.Tensor:
  """uint8 frames [B, T, H, W, 3] -> float32 model input [B, T, S, S, 3] in [-1, 1].

  The evaluation path's centre crop: `crop_boxes.center_crop_box` -> `box_to_pixels` ->
  `crop_and_resize` (bilinear, half-pixel centres) -> `normalize_rgb`.

  Args:
    frames: uint8 [B, T, H, W, 3]; all videos of a batch share H and W.
    crop_size: Output side S.
    crop_fraction: Crop side as a fraction of the short side.

  Returns:
    float32 [B, T, S, S, 3].
  """
  return processors.normalize_rgb(center_crop_resize(frames, crop_size, crop_fraction))


def center_crop_resize(frames: tf.Tensor, crop_size: int,
                       crop_fraction: float) -> tf.Tensor:
  """uint8 frames [B, T, H, W, 3] -> their centre crops resized to S, float32 [B, T, S, S, 3]
  in [0, 255] (the evaluation crop, before normalisation)."""
  frames = tf.convert_to_tensor(frames)
  shape = tf.shape(frames)
  batch, time, height, width = shape[0], shape[1], shape[2], shape[3]
  box = crop_boxes.center_crop_box(height, width, crop_fraction)
  window = crop_boxes.box_to_pixels(box, height, width)
  flat = tf.reshape(frames, tf.stack([batch * time, height, width, 3]))
  out = processors.crop_and_resize(flat, window, crop_size)
  return tf.reshape(out, tf.stack([batch, time, crop_size, crop_size, 3]))


def decode_jpeg_video(jpegs: tf.Tensor) -> tf.Tensor:
  """string [T] JPEG frames of one video -> uint8 [T, H, W, 3] (all frames the same size)."""
  return processors.decode_jpeg_frames(jpegs)


def decode_jpeg_batch(jpegs: tf.Tensor) -> tf.Tensor:
  """string [B, T] JPEG frames -> uint8 [B, T, H, W, 3]."""
  shape = tf.shape(jpegs)
  frames = processors.decode_jpeg_frames(tf.reshape(jpegs, [-1]))
  fshape = tf.shape(frames)
  return tf.reshape(frames, tf.concat([shape, fshape[1:]], axis=0))
