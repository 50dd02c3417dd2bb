"""Flow for records, without TensorFlow: computed pair by pair, quantized, encoded as planes.

Converter workers run this; they must not import TensorFlow (seconds of start-up and hundreds of
MB each), which `d3d_tf/data/records.py` does. The flow algorithms themselves are
`d3d_tf/video/optical_flow.py`'s.
"""

import time
from typing import List, Sequence, Tuple

import cv2
import numpy as np

from d3d_tf.data import flow_quantization
from d3d_tf.video import optical_flow

PNG_COMPRESSION = 3  # Within 10% of the smallest PNG at a tenth of the time of level 9.
FLOW_FORMATS = flow_quantization.FLOW_FORMATS


quantize_flow = flow_quantization.quantize_flow


def imencode(extension: str, image: np.ndarray, params: Sequence[int] = ()) -> bytes:
  """`cv2.imencode` that raises instead of returning a failure flag."""
  ok, buffer = cv2.imencode(extension, image, list(params))
  if not ok:
    raise RuntimeError(f"OpenCV could not encode a {extension} image of shape {image.shape}.")
  return buffer.tobytes()


def plane_encoder(flow_format: str = "png", jpeg_quality: int = 95):
  """Returns `encode(plane) -> bytes` for one uint8 quantized flow plane [H, W]."""
  if flow_format == "png":
    extension, params = ".png", (cv2.IMWRITE_PNG_COMPRESSION, PNG_COMPRESSION)
  elif flow_format == "jpeg":
    extension, params = ".jpg", (cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality))
  else:
    raise ValueError(f"flow_format must be one of {FLOW_FORMATS}. Received: {flow_format!r}")
  return lambda plane: imencode(extension, np.ascontiguousarray(plane), params)


def encode_flow(frames: np.ndarray, algorithm: str, bound: float, flow_format: str = "png",
                jpeg_quality: int = 95) -> Tuple[List[bytes], List[bytes], float]:
  """Flow of each consecutive pair of uint8 RGB frames [N, H, W, 3], as encoded planes.

  Pairs are streamed, so a long video never holds all its float flow at once.

  Returns:
    (flow_x, flow_y, seconds): N-1 planes (PNG, or JPEG at `jpeg_quality`) each of quantized
    horizontal and vertical flow (frame i to i+1, clipped to [-bound, bound] pixels), and the
    seconds spent computing flow (grayscale conversion and solver, not encoding).
  """
  flow_fn = optical_flow.make_flow_fn(algorithm)
  encode = plane_encoder(flow_format, jpeg_quality)
  flow_x, flow_y, seconds = [], [], 0.0
  previous = None
  for frame in frames:
    start = time.perf_counter()
    gray = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
    flow = flow_fn(previous, gray) if previous is not None else None
    seconds += time.perf_counter() - start
    if flow is not None:
      quantized = quantize_flow(flow, bound)
      flow_x.append(encode(quantized[..., 0]))
      flow_y.append(encode(quantized[..., 1]))
    previous = gray
  return flow_x, flow_y, seconds
