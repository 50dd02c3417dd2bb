"""The probe's regression target: the clip's optical flow on one grid for every endpoint.

EPE measured at different resolutions is not comparable (coarser flow is smoother, so its
error is smaller), so every endpoint is scored on ONE grid: the flow averaged over 2-frame x
`space_stride` x `space_stride` cells, which is the native grid of `Conv2d_2c_3x3` at the
default stride of 4 (S3D-G's stem halves time once and space twice before it). Averaging
keeps the units: the target is still the per-frame motion in pixels of the S x S input clip,
now the mean over a cell. Deeper endpoints are upsampled to this grid by their decoder.
"""

from typing import Tuple

from keras import ops

# Conv2d_1a_7x7 has temporal stride 2: no endpoint has finer time than T / 2.
TIME_STRIDE = 2


def target_shape(num_frames: int, crop_size: int, space_stride: int) -> Tuple[int, int, int]:
  """(T', H', W') of the target grid for clips of `num_frames` x `crop_size`^2."""
  if num_frames % TIME_STRIDE or crop_size % space_stride:
    raise ValueError(
        f"num_frames must be a multiple of {TIME_STRIDE} and crop_size of space_stride. "
        f"Received: num_frames={num_frames}, crop_size={crop_size}, "
        f"space_stride={space_stride}")
  return num_frames // TIME_STRIDE, crop_size // space_stride, crop_size // space_stride


def flow_target(flow, bound, space_stride: int):
  """Pipeline flow [B, T, S, S, 2] (pixels / bound) -> float32 [B, T', S', S', 2] pixels.

  Args:
    flow: `features["flow"]` of `datasets.train_dataset` / `eval_dataset`: per-frame flow in
      pixels of the S x S clip divided by the records' flow bound.
    bound: The records' flow bound B (`records.FLOW_BOUND`), which undoes that scaling.
    space_stride: Spatial cell side of the target grid.
  """
  pixels = ops.cast(flow, "float32") * float(bound)
  window = (TIME_STRIDE, space_stride, space_stride)
  return ops.average_pool(pixels, window, strides=window, padding="valid")
