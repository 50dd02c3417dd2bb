"""THE flow quantization, without TensorFlow, so converter workers can use it without TF.

The standard two-stream way: clip flow to [-B, B] pixels, map linearly to 0..255. The records
(NumPy and tensors) and the in-graph processors invert it with `dequantize_flow` here.
"""

import numpy as np

# How records store the quantized planes: PNG (lossless) or JPEG (lossy, faster to read).
FLOW_FORMATS = ("png", "jpeg")


def quantize_flow(flow: np.ndarray, bound: float) -> np.ndarray:
  """Maps flow in pixels, [..., 2] float, to uint8: [-bound, bound] -> [0, 255]."""
  if bound <= 0:
    raise ValueError(f"Flow bound must be positive. Received: bound={bound}")
  clipped = np.clip(np.asarray(flow, np.float32), -bound, bound)
  return np.round((clipped + bound) * (255.0 / (2.0 * bound))).astype(np.uint8)


def dequantize_flow(quantized, bound):
  """Inverts `quantize_flow`: float32 q -> q * 2B / 255 - B pixels.

  Pure arithmetic, so it serves float32 NumPy arrays and float32 tensors alike (callers cast).
  """
  return quantized * (2.0 * bound / 255.0) - bound
