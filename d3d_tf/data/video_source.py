"""Videos from files: frames read with PyAV and flow computed on the fly, in `tf.numpy_function`.

Importing this module imports PyAV and OpenCV (through `raw_video`); the record pipelines never
do. The frames are read whole (seeking to the sampled ones), so every crop is cut from them;
flow is clipped to the records' bound and divided by it, which gives the same inputs as records
quantized with that bound.
"""

from typing import Callable, Dict, Optional, Tuple

import numpy as np
import tensorflow as tf

from d3d_tf.common import defaults
from d3d_tf.data import builders
from d3d_tf.video import raw_video
from d3d_tf.data import records


def probe_op(path: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor]:
  """In-graph `raw_video.probe`: (int32 number of frames, int32 clockwise rotation)."""

  def probe(p):
    num_frames, rotation = raw_video.probe(p)
    return np.int32(num_frames), np.int32(rotation)

  num_frames, rotation = tf.numpy_function(probe, [path], [tf.int32, tf.int32],
                                           stateful=False)
  return tf.ensure_shape(num_frames, []), tf.ensure_shape(rotation, [])


def read_clip_op(path: tf.Tensor, indices: tf.Tensor, num_frames: tf.Tensor,
                 rotation: tf.Tensor, short_side: Optional[int], with_flow: bool,
                 flow_algorithm: str = "dis") -> Tuple[tf.Tensor, tf.Tensor]:
  """In-graph `raw_video.read_clip`: (uint8 [T, H, W, 3], float32 flow [T, H, W, 2] or [0])."""

  def read(p, idx, n, r):
    return raw_video.read_clip(p, idx, short_side, with_flow, int(n), int(r), flow_algorithm)

  frames, flow = tf.numpy_function(read, [path, indices, num_frames, rotation],
                                   [tf.uint8, tf.float32], stateful=False)
  frames = tf.ensure_shape(frames, [None, None, None, 3])
  flow = tf.ensure_shape(flow, [None, None, None, 2] if with_flow else [0])
  return frames, flow


def opener(config: builders.ClipConfig, short_side: Optional[int] = defaults.SHORT_SIDE,
           flow_bound: float = records.DEFAULT_FLOW_BOUND,
           flow_algorithm: str = "dis") -> Callable[[Dict[str, tf.Tensor]], builders.Video]:
  """Returns `open(element) -> Video` for elements {"name": path, "label"}."""

  def open_video(element):
    path = element["name"]
    num_frames, rotation = probe_op(path)

    def read(indices):
      frames, flow = read_clip_op(path, indices, num_frames, rotation, short_side,
                                  config.with_flow, flow_algorithm)
      planes = {}
      if config.with_rgb:
        planes[records.RGB] = builders.Planes(decode=lambda: frames)
      if config.with_flow:
        clipped = tf.clip_by_value(flow, -flow_bound, flow_bound)
        planes[records.FLOW] = builders.Planes(decode=lambda: clipped, scale=flow_bound)
      return builders.Clip(planes, tf.shape(frames)[1], tf.shape(frames)[2])

    return builders.Video(num_frames, element["label"], path, read)

  return open_video
