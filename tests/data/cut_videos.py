"""Real mp4 files cut short, as a download that stopped part way leaves them.

The index (moov) is written first (`movflags=faststart`, as streaming sites serve mp4), so the
container still opens and promises every frame, and only the frames whose bytes are gone fail.
"""

import av
import numpy as np


def write_mp4(path, n=40, height=32, width=48, seed=0):
  """`n` frames of noise at 25 fps, H.264 without B-frames, one packet per frame in order."""
  rng = np.random.default_rng(seed)
  with av.open(str(path), "w", options={"movflags": "faststart"}) as container:
    stream = container.add_stream("libx264", rate=25, options={"bframes": "0"})
    stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
    for _ in range(n):
      frame = rng.integers(0, 255, (height, width, 3), np.uint8)
      for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
        container.mux(packet)
    for packet in stream.encode():
      container.mux(packet)
  return str(path)


def cut_at_fraction(path, out, fraction):
  """Copies the first `fraction` of `path`'s bytes to `out`: a truncated download."""
  data = open(path, "rb").read()
  open(out, "wb").write(data[:int(len(data) * fraction)])
  return str(out)


def cut_before_last_packets(path, out, count):
  """Copies `path` up to where its last `count` video packets start: those frames are lost,
  every other one decodes cleanly."""
  with av.open(str(path)) as container:
    positions = [packet.pos for packet in container.demux(video=0)
                 if packet.pos is not None and packet.size]
  data = open(path, "rb").read()
  open(out, "wb").write(data[:sorted(positions)[-count]])
  return str(out)
