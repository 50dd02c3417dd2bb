"""Dense optical flow with OpenCV (pip-installable, no `denseflow` build): TV-L1, DIS, Farneback.

TV-L1 (OpenCV contrib DualTVL1) is the paper's choice and the slowest; DIS is the fast default
for flow computed on the fly. Flow is in pixels, [..., 2] = (dx, dy), from frame i to frame i+1.
"""

from typing import Callable, Dict

import cv2
import numpy as np

ALGORITHMS = ("tvl1", "dis", "farneback")


def _tvl1() -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
  solver = cv2.optflow.DualTVL1OpticalFlow_create()
  return lambda prev, nxt: solver.calc(prev, nxt, None)


def _dis() -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
  solver = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
  return lambda prev, nxt: solver.calc(prev, nxt, None)


def _farneback() -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
  return lambda prev, nxt: cv2.calcOpticalFlowFarneback(
      prev, nxt, None, pyr_scale=0.5, levels=3, winsize=15, iterations=3, poly_n=5,
      poly_sigma=1.2, flags=0)


_FACTORIES: Dict[str, Callable[[], Callable[[np.ndarray, np.ndarray], np.ndarray]]] = {
    "tvl1": _tvl1, "dis": _dis, "farneback": _farneback}


def make_flow_fn(algorithm: str) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
  """Returns `fn(prev_gray, next_gray) -> float32 [H, W, 2]`; one solver per call site."""
  if algorithm not in _FACTORIES:
    raise ValueError(f"Unknown flow algorithm {algorithm!r}; choose one of {ALGORITHMS}.")
  return _FACTORIES[algorithm]()


def compute_flow(frames: np.ndarray, algorithm: str = "dis") -> np.ndarray:
  """Flow of each consecutive pair of uint8 RGB frames [N, H, W, 3] -> float32 [N-1, H, W, 2]."""
  frames = np.asarray(frames)
  if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
    raise ValueError(
        f"Expected uint8 frames [N, H, W, 3]. Received: shape={frames.shape}, "
        f"dtype={frames.dtype}")
  flow_fn = make_flow_fn(algorithm)
  gray = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames]
  flows = [flow_fn(gray[i], gray[i + 1]) for i in range(len(gray) - 1)]
  if not flows:
    return np.zeros((0,) + frames.shape[1:3] + (2,), np.float32)
  return np.stack(flows).astype(np.float32)


def flow_to_color(flow: np.ndarray, max_magnitude: float = None) -> np.ndarray:
  """Colour-wheel picture of flow [..., H, W, 2] -> uint8 RGB: hue is direction, value is speed.

  `max_magnitude` fixes the scale across pictures (default: the largest magnitude in `flow`).
  """
  flow = np.asarray(flow, np.float32)
  dx, dy = flow[..., 0], flow[..., 1]
  magnitude = np.sqrt(dx * dx + dy * dy)
  angle = np.arctan2(-dy, -dx) / np.pi  # In [-1, 1].
  scale = max_magnitude if max_magnitude else max(float(magnitude.max(initial=0.0)), 1e-6)
  hsv = np.zeros(flow.shape[:-1] + (3,), np.uint8)
  hsv[..., 0] = ((angle + 1.0) * 90.0).astype(np.uint8) % 180  # OpenCV hue is 0..179.
  hsv[..., 1] = 255
  hsv[..., 2] = np.clip(magnitude / scale * 255.0, 0, 255).astype(np.uint8)
  flat = hsv.reshape((-1,) + hsv.shape[-3:]) if hsv.ndim > 3 else hsv[None]
  rgb = np.stack([cv2.cvtColor(h, cv2.COLOR_HSV2RGB) for h in flat])
  return rgb.reshape(hsv.shape)
