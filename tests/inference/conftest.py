"""Synthetic videos for the streaming reader and the feature extractor: constant and variable
frame rate, every frame distinct so a wrong frame shows."""

import fractions

import av
import numpy as np
import pytest


def write_video(path, times_ms, width=64, height=48, rate=25, seed=0):
  """A lossless H.264 video whose frame k is shown at `times_ms[k]` milliseconds.

  Each frame is noise plus a bright bar at a position that moves with k, so frames differ.
  """
  rng = np.random.default_rng(seed)
  background = rng.integers(0, 200, (height, width, 3), np.uint8)
  path.parent.mkdir(parents=True, exist_ok=True)
  with av.open(str(path), "w") as container:
    stream = container.add_stream("libx264", rate=rate, options={"crf": "0"})
    stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
    stream.codec_context.time_base = fractions.Fraction(1, 1000)
    for k, t in enumerate(times_ms):
      image = background.copy()
      image[:, (3 * k) % width] = 255
      image[(2 * k) % height, :, 0] = 255
      frame = av.VideoFrame.from_ndarray(image, format="rgb24")
      frame.pts, frame.time_base = int(t), fractions.Fraction(1, 1000)
      for packet in stream.encode(frame):
        container.mux(packet)
    for packet in stream.encode():
      container.mux(packet)
  return str(path)


@pytest.fixture(scope="session")
def constant_video(tmp_path_factory):
  """30 frames at 25 fps (1.2 s), 64x48."""
  return write_video(tmp_path_factory.mktemp("videos") / "constant.mkv",
                     [40 * k for k in range(30)])


# Frame times of the variable-rate video: bursts and gaps.
VFR_TIMES_MS = (0, 40, 80, 200, 240, 400, 440, 480, 700, 720, 740, 1000)


@pytest.fixture(scope="session")
def vfr_video(tmp_path_factory):
  return write_video(tmp_path_factory.mktemp("videos") / "vfr.mkv", VFR_TIMES_MS)
