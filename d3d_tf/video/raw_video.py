"""Reads only the frames a clip needs from a raw video file (mp4/avi/webm/mkv) with PyAV.

Training on raw videos samples a few frames per video, so decoding whole long videos would
waste most of the work: `read_frames` seeks to the keyframe before each needed frame and
decodes forward from there, and falls back to a sequential decode where the container cannot
seek. These functions run in NumPy (the pipelines call them through `tf.numpy_function`).
"""

from typing import Dict, Optional, Sequence, Tuple

import av
import cv2
import numpy as np

from d3d_tf.common import defaults
from d3d_tf.video import optical_flow
from d3d_tf.video import video_io

VideoReadError = video_io.VideoReadError

# Seek (instead of decoding forward) when the next needed frame is more than this many frames
# past the last decoded one. Seeking lands on the previous keyframe, so a small gap is cheaper
# to decode through.
SEEK_MIN_GAP = 32

def _path(path) -> str:
  return path.decode("utf-8") if isinstance(path, bytes) else str(path)


def probe(path) -> Tuple[int, int]:
  """(number of frames, clockwise rotation in degrees) of a video (`video_io.probe_video`).

  The frame count comes from the container (or duration x fps), so it can be off by a few
  frames; `read_frames` gives indices past the real end the last frame.
  """
  info = video_io.probe_video(_path(path))
  return max(int(info["num_frames"]), 1), int(info["rotation"])


def _frame_rate(stream) -> Tuple[float, bool]:
  """(rate, stated): the stream's rate, or `defaults.FALLBACK_FPS` (as `video_io` assumes)
  with stated False for a stream that states none. Only a stated rate is used to find frames
  by timestamp: a guessed one would misplace a seek, so such streams are decoded from the start
  and their frames counted."""
  for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
    if rate and float(rate) > 0:
      return float(rate), True
  return defaults.FALLBACK_FPS, False


def read_frames(path, indices: Sequence[int], short_side: Optional[int] = None,
                rotation: Optional[int] = None, num_frames: Optional[int] = None,
                max_lost_fraction: float = video_io.MAX_LOST_FRACTION) -> np.ndarray:
  """Decodes the frames at `indices` (any order, repeats allowed) -> uint8 [len(indices), H, W, 3].

  Frame i is the i-th frame in presentation order, found from its timestamp at the stream's
  average frame rate (exact for constant-frame-rate video; without timestamps, frames are
  counted from the start). An index past the last decodable frame (container metadata can
  overcount by a frame or two) gets the last frame, unless the stream ends more than
  `max_lost_fraction` of `num_frames` early: a file cut short is an error, not a clip of
  repeated frames. Frames are upright and resized like `video_io.read_video`, so
  `read_frames(p, idx, s)` equals `video_io.read_video(p, s)[0][idx]`.

  Args:
    path: Video file path (str or bytes, as `tf.numpy_function` passes it).
    indices: Frame indices, >= 0.
    short_side: Resize each frame so its short side has this length; None keeps the size.
    rotation: Clockwise degrees to turn frames upright (from `probe`); None: probe the file.
    num_frames: The frames the container promises (from `probe`); None: probe the file.
    max_lost_fraction: The share of `num_frames` the stream may lack at its end.

  Returns:
    uint8 RGB frames [len(indices), H, W, 3].

  Raises:
    VideoReadError: the file cannot be opened or decoded, or a needed frame lies past where a
      stream cut short ends; the message names the file.
  """
  path = _path(path)
  indices = np.asarray(indices, np.int64).reshape(-1)
  if indices.size == 0 or indices.min() < 0:
    raise ValueError(f"Expected non-empty, non-negative frame indices for {path}. "
                     f"Received: {indices.tolist()}")
  if rotation is None or num_frames is None:
    num_frames, rotation = probe(path)
  container = video_io.open_video(path)
  try:
    decoded, available = _decode_targets(container, sorted(set(indices.tolist())), short_side,
                                         int(rotation))
  except (av.FFmpegError, OSError) as e:
    raise VideoReadError(path, f"decoding failed ({e})") from None
  finally:
    container.close()
  if not decoded:
    raise VideoReadError(path, "no decodable video frames")
  if available is not None and num_frames - available > max_lost_fraction * num_frames:
    raise VideoReadError(path, f"decoded {available} of {num_frames} frames: the stream ends "
                         f"early (frame {int(indices.max())} was needed)")
  return np.stack([decoded[int(i)] for i in indices])


def _decode_targets(container, targets, short_side,
                    rotation) -> Tuple[Dict[int, np.ndarray], Optional[int]]:
  """Decodes the sorted unique frame indices `targets`, seeking across large gaps.

  Returns:
    ({index: frame}, the number of frames the stream really has when a target lay past its
    end, else None).
  """
  stream = container.streams.video[0]
  fps, stated = _frame_rate(stream)
  time_base = float(stream.time_base) if stream.time_base else 0.0
  start = stream.start_time or 0
  seekable = stated and time_base > 0

  out: Dict[int, np.ndarray] = {}
  frames = None  # Decoder iterator, from the last (re)start.
  position, last = -1, None  # Index and frame last decoded.
  started = False  # Whether the container has been read from (a restart at 0 must rewind).
  i = 0
  while i < len(targets):
    target = targets[i]
    restart = frames is None or (seekable and target - position > SEEK_MIN_GAP)
    if restart:
      frames = _start_decoding(container, stream, target if seekable else 0, fps, time_base,
                               start, rewind=started)
      started = True
      counter, first, position, last = -1, True, -1, None
    reached = fallback = False
    for frame in frames:
      counter += 1
      if seekable and frame.pts is None:
        fallback = True  # No timestamps: count frames from the start instead.
        break
      index = int(round((frame.pts - start) * time_base * fps)) if seekable else counter
      if first and index > target:
        fallback = True  # The seek landed past the target.
        break
      first = False
      position, last = index, frame
      if index >= target:
        reached = True
        break
    if not reached:
      if not fallback and last is not None:
        # End of stream: the last frame stands in for indices past it (metadata overcount).
        rgb = video_io.upright_rgb(last, rotation, short_side)
        for t in targets[i:]:
          out[t] = rgb
        return out, position + 1
      if not seekable:
        return out, None  # Nothing decodable.
      seekable, frames = False, None  # Decode sequentially from the first frame instead.
      continue
    rgb = video_io.upright_rgb(last, rotation, short_side)
    while i < len(targets) and targets[i] <= position:
      out[targets[i]] = rgb
      i += 1
  return out, None


def _start_decoding(container, stream, target, fps, time_base, start, rewind):
  """Seeks to the keyframe at or before frame `target` and returns a decoder from there.

  Target 0 decodes from the start of the file (rewinding when it has been read already).
  """
  if target > 0:
    container.seek(int(start + target / fps / time_base), stream=stream, backward=True,
                   any_frame=False)
  elif rewind:
    container.seek(0)
  return container.decode(stream)


def read_clip(path, indices: Sequence[int], short_side: Optional[int] = None,
              with_flow: bool = False, num_frames: Optional[int] = None,
              rotation: Optional[int] = None,
              flow_algorithm: str = "dis") -> Tuple[np.ndarray, np.ndarray]:
  """Reads a clip's frames and, optionally, the flow out of each frame computed on the fly.

  The flow of frame i is the flow from frame i to frame i + 1 (as in the records), so the
  frames after the sampled ones are decoded too. The last frame of the video reuses the flow
  into it (pair N-2 -> N-1); a 1-frame video has zero flow.

  Args:
    path: Video file path.
    indices: Frame indices of the clip.
    short_side: Resize short side (flow is computed at this resolution).
    with_flow: Whether to compute flow.
    num_frames: Number of frames N of the video (from `probe`); None: probe the file.
    rotation: Clockwise rotation (from `probe`); None: probe the file.
    flow_algorithm: One of `optical_flow.ALGORITHMS`.

  Returns:
    (uint8 frames [T, H, W, 3], float32 flow [T, H, W, 2] in pixels, or [0] without flow).
  """
  indices = np.asarray(indices, np.int64).reshape(-1)
  if num_frames is None or rotation is None:
    num_frames, rotation = probe(path)
  if not with_flow:
    return (read_frames(path, indices, short_side, rotation, num_frames),
            np.zeros([0], np.float32))
  last = int(num_frames) - 1
  if last < 1:
    frames = read_frames(path, indices, short_side, rotation, num_frames)
    return frames, np.zeros(frames.shape[:3] + (2,), np.float32)
  starts = np.clip(indices, 0, last - 1)
  needed = np.concatenate([indices, starts, starts + 1])
  frames = read_frames(path, needed, short_side, rotation, num_frames)
  gray = {int(i): cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for i, f in zip(needed, frames)}
  flow_fn = optical_flow.make_flow_fn(flow_algorithm)
  flows = {s: flow_fn(gray[s], gray[s + 1]) for s in sorted(set(starts.tolist()))}
  flow = np.stack([flows[int(s)] for s in starts]).astype(np.float32)
  return frames[:len(indices)], flow
