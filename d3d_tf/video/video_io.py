"""Video decoding with PyAV: uint8 RGB frames, upright, resized and optionally resampled in time.

The TFRecord converter and the raw-video input pipeline both decode through here, so a clip looks
the same whichever way it reaches the model. Every way a file can fail to give frames (missing,
empty, not a media file, audio only, truncated past repair) surfaces as one `VideoReadError`
carrying the path and a reason a user can act on; a converter lists it and moves on.

A file that gives some frames but not all (cut short, a corrupt packet) is not an error here:
`decode_video` returns a `DecodeReport` (frames decoded, frames the container promised, the
decoder errors met) and each caller applies its own policy, e.g. the converter's
`max_lost_fraction`.
"""

import dataclasses
import os
from typing import Dict, Iterator, List, NamedTuple, Optional, Tuple

import av
import cv2
import numpy as np

from d3d_tf.common import defaults


class VideoReadError(Exception):
  """A file that yields no video frames. `path` and `reason` are kept for failure reports."""

  def __init__(self, path, reason: str):
    # Both go to `Exception.__init__` so the error pickles across worker processes.
    super().__init__(os.fspath(path), reason)
    self.path = os.fspath(path)
    self.reason = reason

  def __str__(self):
    return f"{self.path}: {self.reason}"


def _describe(error: Exception) -> str:
  """FFmpeg errors carry the file name in `str()`; `strerror` is the part worth showing."""
  return getattr(error, "strerror", None) or str(error) or type(error).__name__


def open_video(path) -> av.container.InputContainer:
  """Opens a container that has a video stream, or raises `VideoReadError` saying why not."""
  path = os.fspath(path)
  if not os.path.exists(path):
    raise VideoReadError(path, "file does not exist")
  if os.path.isdir(path):
    raise VideoReadError(path, "is a directory, not a video file")
  if os.path.getsize(path) == 0:
    raise VideoReadError(path, "file is empty (0 bytes)")
  try:
    container = av.open(path, metadata_errors="ignore")
  except (av.FFmpegError, OSError, UnicodeDecodeError) as e:
    raise VideoReadError(
        path, f"not a readable video file, or truncated ({_describe(e)})") from None
  if not container.streams.video:
    kinds = sorted({s.type for s in container.streams})
    container.close()
    found = f"only {', '.join(kinds)} streams" if kinds else "no streams"
    raise VideoReadError(path, f"has no video stream ({found})")
  return container


def _stream_fps(stream) -> float:
  for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
    if rate and float(rate) > 0:
      return float(rate)
  # Raw elementary streams can carry no rate at all: the one fallback (FFmpeg's own guess).
  return defaults.FALLBACK_FPS


def _clockwise_rotation(stream, frame) -> int:
  """Degrees, in {0, 90, 180, 270}, to turn stored frames clockwise so they display upright.

  The display matrix (side data FFmpeg attaches to decoded frames) wins over the legacy
  `rotate` stream tag, which has the same clockwise meaning. Flips in the matrix and angles off
  the right angles are rare enough to round to the nearest quarter turn.
  """
  degrees = 0.0
  counterclockwise = getattr(frame, "rotation", 0) if frame is not None else 0
  if counterclockwise:
    degrees = -float(counterclockwise)
  else:
    try:
      degrees = float(stream.metadata.get("rotate", 0) or 0)
    except ValueError:
      degrees = 0.0
  return int(round(degrees / 90.0)) % 4 * 90


_ROTATE_CODES = {
    90: cv2.ROTATE_90_CLOCKWISE, 180: cv2.ROTATE_180, 270: cv2.ROTATE_90_COUNTERCLOCKWISE}


def upright_rgb(frame: av.VideoFrame, rotation: int, short_side: Optional[int]) -> np.ndarray:
  """One decoded frame as upright RGB, its short side resized to `short_side` (kept if None)."""
  image = frame.to_ndarray(format="rgb24")
  if rotation:
    image = cv2.rotate(image, _ROTATE_CODES[rotation])
  size = output_size(image.shape[1], image.shape[0], short_side)
  if (image.shape[1], image.shape[0]) != size:
    # INTER_AREA averages when shrinking (no aliasing); it degrades to nearest-neighbour when
    # enlarging, where bilinear is the better choice.
    shrinking = size[0] * size[1] < image.shape[0] * image.shape[1]
    image = cv2.resize(
        image, size, interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
  return image


def output_size(width: int, height: int, short_side: Optional[int]) -> Tuple[int, int]:
  """(width, height) with the short side `short_side` and the aspect kept; both even.

  Even sizes keep every frame encodable as yuv420 video and let 2x2 pooling divide evenly.
  `short_side` None or 0 keeps the size as it is.
  """
  if not short_side:
    return width, height
  scale = short_side / float(min(width, height))
  even = lambda x: max(2, int(round(x / 2.0)) * 2)
  return even(width * scale), even(height * scale)


# The default share of its promised frames a video may lose and still be used.
MAX_LOST_FRACTION = defaults.MAX_LOST_FRACTION


@dataclasses.dataclass
class DecodeReport:
  """How completely a video decoded: what a caller needs to refuse a file cut short.

  Attributes:
    frames_decoded: source frames that came out of the decoder (before any resampling).
    frames_promised: frames the container announced: its frame count, else duration x rate
      (`promised_estimated` then True); 0 when it announces neither.
    errors: the demuxing and decoding errors met, in order.
    complete: False when decoding stopped early on purpose (`max_frames` reached); then only
      frames missing before that point count as lost.
    promised_estimated: `frames_promised` is duration x rate, which may round one frame over.
  """
  frames_decoded: int = 0
  frames_promised: int = 0
  errors: List[str] = dataclasses.field(default_factory=list)
  complete: bool = True
  promised_estimated: bool = False
  # When decoding stopped early after errors: frames the timestamps say were skipped.
  frames_skipped: int = 0

  @property
  def frames_lost(self) -> int:
    """Frames promised (or skipped, when decoding stopped early) that never came out."""
    if not self.complete:
      return self.frames_skipped
    # An estimated count one frame over is rounding, not a lost frame.
    slack = 1 if self.promised_estimated and not self.errors else 0
    return max(self.frames_promised - self.frames_decoded - slack, 0)

  @property
  def lost_fraction(self) -> float:
    """`frames_lost` over the frames there should have been; 0.0 for a whole video."""
    expected = max(self.frames_promised, self.frames_decoded + self.frames_lost)
    return self.frames_lost / expected if expected else 0.0

  def describe(self) -> str:
    """One line for failure reports: "decoded 151 of 250 frames: <the last error>"."""
    expected = max(self.frames_promised, self.frames_decoded + self.frames_lost)
    cause = self.errors[-1] if self.errors else "the stream ends early"
    return f"decoded {self.frames_decoded} of {expected} frames: {cause}"


def _promised_frames(container, stream, fps: float) -> Tuple[int, bool, float]:
  """(frames the container announces, whether that is duration x fps, duration in seconds)."""
  if stream.duration and stream.time_base:
    duration = float(stream.duration * stream.time_base)
  elif container.duration:
    duration = container.duration / av.time_base
  else:
    duration = 0.0
  if stream.frames:
    return int(stream.frames), False, duration
  return int(round(duration * fps)), True, duration


def _decoded_frames(container, stream, report: DecodeReport) -> Iterator[av.VideoFrame]:
  """Decodes packet by packet so one corrupt packet costs its frames, not the whole video.

  A demuxing error (the file ends early) stops decoding. Every error met goes into
  `report.errors` and every frame that comes out is counted in `report.frames_decoded`.
  """
  packets = container.demux(stream)
  while True:
    try:
      packet = next(packets)
    except StopIteration:
      return
    except (av.FFmpegError, OSError) as e:
      report.errors.append(_describe(e))
      return
    try:
      frames = packet.decode()
    except (av.FFmpegError, OSError) as e:
      report.errors.append(_describe(e))
      continue
    for frame in frames:
      report.frames_decoded += 1
      yield frame


def _timed(frames: Iterator[av.VideoFrame], source_fps: float):
  """Pairs each frame with its presentation time in seconds, inventing one where pts is absent."""
  for index, frame in enumerate(frames):
    time = frame.time
    yield (index / source_fps if time is None else float(time)), frame


def _resample(timed_frames, source_fps: float, fps: float):
  """Yields, for every tick of a `fps` clock, the source frame nearest in time (repeats allowed).

  Streams, so decoding can stop as soon as the caller has enough frames. The clip keeps its
  duration: the last source frame lasts one source period, and ticks stop there.
  """
  step = 1.0 / fps
  tick = 0
  start = previous_time = previous = None
  for time, frame in timed_frames:
    if previous is None:
      start = time
    else:
      # Ticks up to the midpoint of two frames go to the earlier one, so upsampling by 2
      # repeats every frame twice.
      midpoint = 0.5 * (previous_time + time)
      while start + tick * step <= midpoint + 1e-6:
        yield previous
        tick += 1
    previous_time, previous = time, frame
  if previous is not None:
    end = previous_time + 1.0 / source_fps
    while start + tick * step < end - 1e-6:
      yield previous
      tick += 1


def probe_video(path) -> Dict[str, float]:
  """Metadata of a video without decoding it all: frames, rate, displayed size, rotation.

  Decodes only the first frame, which proves the file has video and carries the rotation.

  Returns:
    dict with `num_frames` (int; from the container, or duration x fps when it has no count),
    `fps` (float), `width` and `height` (ints, as displayed, i.e. after rotation), `duration`
    (float seconds) and `rotation` (int clockwise degrees applied for display: 0/90/180/270).

  Raises:
    VideoReadError: the file is missing, empty, not a video, or has no decodable frame.
  """
  container = open_video(path)
  try:
    stream = container.streams.video[0]
    fps = _stream_fps(stream)
    report = DecodeReport()
    first = next(_decoded_frames(container, stream, report), None)
    if first is None:
      raise VideoReadError(path, _no_frames_reason(report))
    rotation = _clockwise_rotation(stream, first)
    width, height = first.width, first.height
    if rotation in (90, 270):
      width, height = height, width
    num_frames, _, duration = _promised_frames(container, stream, fps)
    return dict(num_frames=int(num_frames), fps=fps, width=int(width), height=int(height),
                duration=duration, rotation=rotation)
  finally:
    container.close()


class DecodedVideo(NamedTuple):
  """`decode_video`'s result: the frames, their rate, and how completely the file decoded."""
  frames: np.ndarray
  fps: float
  report: DecodeReport


def _no_frames_reason(report: DecodeReport) -> str:
  return "no decodable video frames" + (f" ({report.errors[-1]})" if report.errors else "")


def _spanned(timed_frames, span: list):
  """Passes (time, frame) pairs through, keeping [first time, last time] in `span`."""
  for time, frame in timed_frames:
    span[:] = [span[0] if span else time, time]
    yield time, frame


def decode_video(path, short_side: Optional[int] = None, fps: Optional[float] = None,
                 max_frames: Optional[int] = None) -> DecodedVideo:
  """Decodes a video into upright RGB frames and reports how many frames were lost.

  Args:
    path: the video file.
    short_side: resize so the shorter side is this many pixels, keeping the aspect ratio (both
      sides rounded to even). None or 0 keeps the decoded size.
    fps: resample to this rate by taking the nearest frame in time. None or 0 keeps the source.
    max_frames: stop after this many output frames. None or 0 decodes the whole video.

  Returns:
    DecodedVideo(frames, fps, report): uint8 [N, H, W, 3] RGB frames, N >= 1, the rate they are
    at, and the `DecodeReport` (a file cut short decodes, with frames lost in the report).

  Raises:
    VideoReadError: no frame could be decoded.
  """
  if short_side is not None and short_side < 0:
    raise ValueError(f"short_side must be positive or None. Received: short_side={short_side}")
  if fps is not None and fps < 0:
    raise ValueError(f"fps must be positive or None. Received: fps={fps}")
  container = open_video(path)
  try:
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"
    source_fps = _stream_fps(stream)
    report = DecodeReport()
    report.frames_promised, report.promised_estimated, _ = _promised_frames(
        container, stream, source_fps)
    span = []  # [time of the first decoded frame, time of the last]
    timed = _spanned(_timed(_decoded_frames(container, stream, report), source_fps), span)
    if fps:
      frames = _resample(timed, source_fps, fps)
    else:
      frames = (frame for _, frame in timed)
    out, rotation = [], None
    last_frame = last_image = None
    for frame in frames:
      if frame is last_frame:  # A frame repeated by upsampling is converted once.
        out.append(last_image)
      else:
        if rotation is None:
          rotation = _clockwise_rotation(stream, frame)
        image = upright_rgb(frame, rotation, short_side)
        last_frame, last_image = frame, image
        out.append(image)
      if max_frames and len(out) >= max_frames:
        report.complete = False
        break
    if not out:
      raise VideoReadError(path, _no_frames_reason(report))
    if not report.complete and report.errors and span:
      # Stopped on purpose: only the frames missing between the first and last decoded count.
      spanned = int(round((span[1] - span[0]) * source_fps)) + 1
      report.frames_skipped = max(spanned - report.frames_decoded, 0)
    return DecodedVideo(np.stack(out), float(fps) if fps else source_fps, report)
  finally:
    container.close()


def read_video(path, short_side: Optional[int] = None, fps: Optional[float] = None,
               max_frames: Optional[int] = None) -> Tuple[np.ndarray, float]:
  """`decode_video` without its report: (frames, fps), for callers that take what decodes.

  Raises:
    VideoReadError: no frame could be decoded.
  """
  frames, rate, _ = decode_video(path, short_side=short_side, fps=fps, max_frames=max_frames)
  return frames, rate
