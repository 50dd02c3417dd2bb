"""Writes small synthetic video records whose motion (and so optical flow) is known exactly.

Each video is a smooth random texture translated by a constant (dx, dy) pixels per frame, so
the true flow of every frame pair is (dx, dy) everywhere; flow planes are that constant,
quantized and encoded (PNG, or JPEG with `flow_format="jpeg"`) as the converter would.
"""

import os
from typing import List, Optional, Sequence

import cv2
import numpy as np
import tensorflow as tf

from d3d_tf.data import records


def textured_frames(num_frames: int, height: int, width: int, dx: int, dy: int,
                    seed: int = 0) -> np.ndarray:
  """uint8 [N, H, W, 3] frames of a texture moving (dx, dy) pixels per frame (integer)."""
  rng = np.random.default_rng(seed)
  margin = (num_frames + 1) * max(abs(dx), abs(dy)) + 4
  canvas = rng.uniform(0, 255, (height + 2 * margin, width + 2 * margin, 3)).astype(np.float32)
  canvas = cv2.GaussianBlur(canvas, (0, 0), 2.0)
  canvas = (canvas - canvas.min()) / (canvas.max() - canvas.min()) * 255.0
  canvas = canvas.astype(np.uint8)
  frames = []
  for t in range(num_frames):
    # Content moves by +(dx, dy): frame t shows the canvas shifted by -(t dx, t dy).
    y0, x0 = margin - t * dy, margin - t * dx
    frames.append(canvas[y0:y0 + height, x0:x0 + width])
  return np.stack(frames)


def encode_jpeg(frame: np.ndarray, quality: int = 95) -> bytes:
  ok, data = cv2.imencode(".jpg", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR),
                          [cv2.IMWRITE_JPEG_QUALITY, quality])
  assert ok
  return data.tobytes()


def encode_png(plane: np.ndarray) -> bytes:
  ok, data = cv2.imencode(".png", plane)
  assert ok
  return data.tobytes()


def encode_plane(plane: np.ndarray, flow_format: str = "png") -> bytes:
  """One quantized flow plane as the converter stores it (`--flow_format`)."""
  if flow_format == "png":
    return encode_png(plane)
  ok, data = cv2.imencode(".jpg", np.ascontiguousarray(plane), [cv2.IMWRITE_JPEG_QUALITY, 95])
  assert ok
  return data.tobytes()


def make_video_example(video_id: str, label: int, num_frames: int = 12, height: int = 48,
                       width: int = 64, dx: int = 3, dy: int = -2, with_flow: bool = True,
                       bound: float = records.DEFAULT_FLOW_BOUND, seed: int = 0,
                       frames: Optional[np.ndarray] = None,
                       flow_format: str = "png") -> tf.train.SequenceExample:
  """One record of a translating texture; flow planes encode exactly (dx, dy)."""
  if frames is None:
    frames = textured_frames(num_frames, height, width, dx, dy, seed)
  num_frames, height, width = frames.shape[:3]
  flow_x = flow_y = None
  if with_flow:
    flow = np.zeros((max(num_frames - 1, 0), height, width, 2), np.float32)
    flow[..., 0], flow[..., 1] = dx, dy
    q = records.quantize_flow(flow, bound)
    flow_x = [encode_plane(p[..., 0], flow_format) for p in q]
    flow_y = [encode_plane(p[..., 1], flow_format) for p in q]
  return records.make_sequence_example(
      video_id, label, f"class{label}", 25.0, height, width,
      [encode_jpeg(f) for f in frames], flow_x=flow_x, flow_y=flow_y,
      flow_algorithm="synthetic" if with_flow else "none", flow_bound=bound,
      flow_format=flow_format)


def write_records(path: str, examples: Sequence[tf.train.SequenceExample]) -> str:
  with tf.io.TFRecordWriter(path) as writer:
    for example in examples:
      writer.write(example.SerializeToString())
  return path


def write_shards(directory: str, num_shards: int = 2, videos_per_shard: int = 3,
                 num_frames: int = 12, with_flow: bool = True, **kw) -> List[str]:
  """Shards of translating-texture videos; video k has label k and its own texture."""
  paths = []
  k = 0
  for s in range(num_shards):
    examples = []
    for _ in range(videos_per_shard):
      examples.append(make_video_example(f"video{k:03d}", k, num_frames=num_frames,
                                         with_flow=with_flow, seed=k, **kw))
      k += 1
    paths.append(write_records(os.path.join(directory, f"shard-{s:05d}.tfrecord"), examples))
  return paths


def quantized_flow_value(value: float, bound: float = records.DEFAULT_FLOW_BOUND) -> float:
  """The flow value in pixels that survives quantization (what the pipeline can recover)."""
  return float(records.dequantize_flow(records.quantize_flow(np.float32(value), bound), bound))
