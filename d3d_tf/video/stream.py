"""Decode-in-chunks reading of a video: fixed windows, or chosen frames, in bounded memory.

`video_io.read_video` returns every frame of a video at once; an hour at 30 fps and short side
256 is tens of gigabytes. Here frames are decoded in order and only those some window (or
clip) needs are converted to RGB and kept, and only until their window is complete, so memory
is one window plus its overlap with the next, whatever the video's length. The frames are the
very ones `read_video` gives (same decoding, rotation, resize and `fps` resampling), so a
streamed window equals the same slice of the whole-video array.

Times are seconds from the video's first frame: a frame's presentation timestamp (so a
variable-frame-rate video gets its real times), or `k / fps` for the k-th frame resampled to
`fps`. The video ends one source frame period after its last frame.
"""

import collections
import contextlib
import dataclasses
import math
from typing import Dict, Iterator, Optional, Tuple

import av
import numpy as np

from d3d_tf.video import video_io


@dataclasses.dataclass(frozen=True)
class Window:
  """One window of a video.

  Attributes:
    index: Window number i; it starts at frame `i * window_stride` of the (resampled) video.
    start_frame: That frame's index.
    frames: uint8 [num_frames, H, W, 3], frames `start_frame + k * frame_step`.
    start_seconds: Time of the window's first frame.
    end_seconds: Time the window's span ends: the time of the frame after it, or the end of
      the video for a window that reaches the last frame.
  """
  index: int
  start_frame: int
  frames: np.ndarray
  start_seconds: float
  end_seconds: float


class _Source:
  """An open video's frames as (seconds, av.VideoFrame), resampled to `fps` when given, with
  the conversion to upright, resized RGB done on demand (a repeated frame converted once)."""

  def __init__(self, path, short_side: Optional[int], fps: Optional[float]):
    if short_side is not None and short_side < 0:
      raise ValueError(f"short_side must be positive or None. Received: {short_side}")
    if fps is not None and fps <= 0:
      raise ValueError(f"fps must be positive or None. Received: fps={fps}")
    self.path = path
    self._short_side = short_side
    self._fps = fps
    self._container = video_io.open_video(path)
    self._stream = self._container.streams.video[0]
    self._stream.thread_type = "AUTO"
    self.source_fps = video_io._stream_fps(self._stream)  # pylint: disable=protected-access
    # Frames decoded against those the container promised, and the errors met: how much of a
    # damaged or cut-short file came out (`video_io.DecodeReport`).
    self.report = video_io.DecodeReport()
    promised, estimated, _ = video_io._promised_frames(  # pylint: disable=protected-access
        self._container, self._stream, self.source_fps)
    self.report.frames_promised, self.report.promised_estimated = promised, estimated
    self._rotation = None
    self._last = (None, None)
    self.end_seconds = None  # Known once the frames are exhausted.
    self.count = 0

  @property
  def fps(self) -> float:
    """The rate of the frames given: `fps` if resampled, else the stream's (average) rate."""
    return float(self._fps) if self._fps else self.source_fps

  def __iter__(self) -> Iterator[Tuple[float, av.VideoFrame]]:
    # pylint: disable=protected-access
    frames = video_io._decoded_frames(self._container, self._stream, self.report)
    timed = video_io._timed(frames, self.source_fps)
    if self._fps:
      # `_resample` gives the frame of every tick of the `fps` clock from the first frame on.
      for tick, frame in enumerate(video_io._resample(timed, self.source_fps, self._fps)):
        self.count = tick + 1
        yield tick / self._fps, frame
      if self.count:
        self.end_seconds = self.count / self._fps
    else:
      first_time = last_time = None
      for index, (time, frame) in enumerate(timed):
        first_time = time if first_time is None else first_time
        last_time = time - first_time
        self.count = index + 1
        yield last_time, frame
      if self.count:
        self.end_seconds = last_time + 1.0 / self.source_fps
    if not self.count:
      reason = "no decodable video frames" + (
          f" ({self.report.errors[-1]})" if self.report.errors else "")
      raise video_io.VideoReadError(self.path, reason)

  def image(self, frame: av.VideoFrame) -> np.ndarray:
    if frame is self._last[0]:
      return self._last[1]
    if self._rotation is None:
      self._rotation = video_io._clockwise_rotation(  # pylint: disable=protected-access
          self._stream, frame)
    image = video_io.upright_rgb(frame, self._rotation, self._short_side)
    self._last = (frame, image)
    return image

  def close(self) -> None:
    self._container.close()


def _check_window(num_frames: int, frame_step: int, window_stride: int) -> None:
  for name, value in (("num_frames", num_frames), ("frame_step", frame_step),
                      ("window_stride", window_stride)):
    if int(value) < 1:
      raise ValueError(f"{name} must be >= 1. Received: {name}={value}")


def iter_windows(path, num_frames: int, frame_step: int = 1,
                 window_stride: Optional[int] = None, short_side: Optional[int] = None,
                 fps: Optional[float] = None, partial_last: bool = False,
                 report: Optional[video_io.DecodeReport] = None) -> Iterator[Window]:
  """The whole windows of a video, decoded as they are needed.

  Window i starts at frame `i * window_stride` and spans `num_frames * frame_step` frames, of
  which it holds every `frame_step`-th (a model's clip with its temporal stride). Only windows
  that fit entirely in the video are given. Frames no window uses are decoded but never
  converted or kept.

  Args:
    path: the video file.
    num_frames: frames per window (the model's clip length).
    frame_step: step between a window's frames (the model's temporal stride).
    window_stride: frames between window starts; None: the span (back to back). Smaller
      values overlap.
    short_side: resize so the shorter side is this many pixels (None keeps the size).
    fps: resample to this rate first (None keeps the source's frames).
    partial_last: also give the window that starts after the last whole one, cut short by
      the end of the video (fewer frames), so every frame is in a window; none when the whole
      windows reach the end.
    report: filled, once the windows are exhausted, with how completely the video decoded
      (frames lost to a damaged or cut-short file).

  Yields:
    `Window`s, in order.

  Raises:
    VideoReadError: the file cannot be opened or yields no frame (raised when iterated).
  """
  span = num_frames * frame_step
  window_stride = span if window_stride is None else window_stride
  _check_window(num_frames, frame_step, window_stride)
  with contextlib.closing(_Source(path, short_side, fps)) as source:
    yield from _windows(source, num_frames, frame_step, window_stride, partial_last)
    if report is not None:
      report.__dict__.update(dataclasses.asdict(source.report))


def _windows(source: _Source, num_frames: int, frame_step: int, window_stride: int,
             partial_last: bool = False) -> Iterator[Window]:
  span = num_frames * frame_step
  kept = collections.deque()  # (index, seconds, image) of frames of windows not yet given.
  start_times: Dict[int, float] = {}
  window = 0  # The next window to give.

  def needed(j: int) -> bool:
    first = max(0, math.ceil((j - span + 1) / window_stride))
    return any((j - i * window_stride) % frame_step == 0
               for i in range(first, j // window_stride + 1))

  def make(end_seconds: float) -> Window:
    start = window * window_stride
    frames = np.stack([image for index, _, image in kept
                       if index >= start and (index - start) % frame_step == 0][:num_frames])
    return Window(window, start, frames, start_times.pop(start), end_seconds)

  for j, (seconds, frame) in enumerate(source):
    if j == window * window_stride + span:  # Frame j ends the pending window.
      yield make(seconds)
      window += 1
      while kept and kept[0][0] < window * window_stride:
        kept.popleft()
    if j % window_stride == 0:
      start_times[j] = seconds
    if needed(j):
      kept.append((j, seconds, source.image(frame)))
  if source.count == window * window_stride + span or (
      partial_last and window * window_stride < source.count):
    yield make(source.end_seconds)


def window_count(num_frames_in_video: int, span: int, window_stride: int) -> int:
  """How many whole windows of `span` frames, `window_stride` apart, a video holds."""
  if num_frames_in_video < span:
    return 0
  return (num_frames_in_video - span) // window_stride + 1


def count_frames(path, fps: Optional[float] = None) -> Tuple[int, float]:
  """(frames, rate) the video gives `read_video(path, fps=fps)`, decoding without converting."""
  count, rate, _ = scan(path, fps)
  return count, rate


def scan(path, fps: Optional[float] = None
         ) -> Tuple[int, float, video_io.DecodeReport]:
  """`count_frames`, and how completely the video decoded (frames lost to damage)."""
  with contextlib.closing(_Source(path, None, fps)) as source:
    for _ in source:
      pass
    return source.count, source.fps, source.report


def read_frames_at(path, indices: np.ndarray, short_side: Optional[int] = None,
                   fps: Optional[float] = None) -> np.ndarray:
  """`read_video(path, short_side, fps)[0][indices]` keeping only the frames `indices` names.

  Args:
    indices: int array of any shape, every value in [0, frames of the video).

  Returns:
    uint8 [*indices.shape, H, W, 3].

  Raises:
    VideoReadError: unreadable, or shorter than the largest index.
  """
  indices = np.asarray(indices, dtype=np.int64)
  wanted = set(indices.ravel().tolist())
  last = max(wanted) if wanted else -1
  images: Dict[int, np.ndarray] = {}
  with contextlib.closing(_Source(path, short_side, fps)) as source:
    for j, (_, frame) in enumerate(source):
      if j in wanted:
        images[j] = source.image(frame)
      if j >= last:
        break
  if last not in images:
    raise video_io.VideoReadError(path, f"has {len(images)} of the frames asked for; it ended "
                                        f"before frame {last}")
  return np.stack([images[i] for i in indices.ravel()]).reshape(
      indices.shape + images[last].shape)



def windows_of_frames(frames: np.ndarray, fps: float, num_frames: int, frame_step: int = 1,
                      window_stride: Optional[int] = None) -> Iterator[Window]:
  """`iter_windows`' windows of frames already in memory at a constant `fps` (a record's)."""
  span = num_frames * frame_step
  window_stride = span if window_stride is None else window_stride
  _check_window(num_frames, frame_step, window_stride)
  for i in range(window_count(len(frames), span, window_stride)):
    start = i * window_stride
    yield Window(i, start, frames[start:start + span:frame_step], start / fps,
                 (start + span) / fps)
