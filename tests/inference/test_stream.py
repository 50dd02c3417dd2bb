"""video.stream: whole windows, their timestamps (constant and variable frame rate), fps
resampling, and frames identical to the whole-video read."""

import numpy as np
import pytest

from d3d_tf.video import stream
from d3d_tf.video import video_io
from tests.conftest import sample_clip
from tests.inference.conftest import VFR_TIMES_MS


def _windows(path, **kwargs):
  return list(stream.iter_windows(path, **kwargs))


def test_constant_rate_windows_are_whole_with_frame_times(constant_video):
  frames, _ = video_io.read_video(constant_video)
  windows = _windows(constant_video, num_frames=4, frame_step=2, window_stride=5)
  # Span 8: starts 0, 5, ..., 20 (a window from 25 would end past frame 29).
  assert [w.start_frame for w in windows] == [0, 5, 10, 15, 20]
  assert [w.index for w in windows] == [0, 1, 2, 3, 4]
  np.testing.assert_allclose([w.start_seconds for w in windows], [s / 25 for s in range(0, 21, 5)])
  np.testing.assert_allclose([w.end_seconds for w in windows],
                             [(s + 8) / 25 for s in range(0, 21, 5)])
  for w in windows:
    np.testing.assert_array_equal(w.frames, frames[w.start_frame:w.start_frame + 8:2])


def test_back_to_back_default_and_last_window_ends_with_the_video(constant_video):
  windows = _windows(constant_video, num_frames=10)
  assert [w.start_frame for w in windows] == [0, 10, 20]
  assert windows[-1].end_seconds == pytest.approx(30 / 25)
  assert stream.window_count(30, 10, 10) == 3
  assert _windows(constant_video, num_frames=31) == []


def test_variable_rate_windows_take_presentation_times(vfr_video):
  frames, _ = video_io.read_video(vfr_video)
  assert len(frames) == len(VFR_TIMES_MS)
  windows = _windows(vfr_video, num_frames=3, window_stride=2)
  times = np.array(VFR_TIMES_MS) / 1000.0
  assert [w.start_frame for w in windows] == [0, 2, 4, 6, 8]
  np.testing.assert_allclose([w.start_seconds for w in windows], times[[0, 2, 4, 6, 8]])
  # Each ends when the frame after it is shown.
  np.testing.assert_allclose([w.end_seconds for w in windows], times[[3, 5, 7, 9, 11]])
  for w in windows:
    np.testing.assert_array_equal(w.frames, frames[w.start_frame:w.start_frame + 3])
  # A window that reaches the last frame ends with the video: the last frame's time plus one
  # period of the stream's average rate (25 fps).
  windows = _windows(vfr_video, num_frames=4)
  np.testing.assert_allclose([w.end_seconds for w in windows], [0.24, 0.7, 1.0 + 1 / 25])


def test_fps_resampling_counts_ticks_and_matches_read_video(constant_video, vfr_video):
  # 1.2 s at 10 fps: 12 ticks; windows of 4 back to back: 3.
  windows = _windows(constant_video, num_frames=4, fps=10)
  assert len(windows) == 3
  np.testing.assert_allclose([w.start_seconds for w in windows], [0.0, 0.4, 0.8])
  np.testing.assert_allclose([w.end_seconds for w in windows], [0.4, 0.8, 1.2])
  resampled, rate = video_io.read_video(constant_video, fps=10)
  assert (len(resampled), rate) == (12, 10.0)
  assert stream.count_frames(constant_video, fps=10) == (12, 10.0)
  for w in windows:
    np.testing.assert_array_equal(w.frames, resampled[w.start_frame:w.start_frame + 4])
  # Variable rate: 1.04 s of video at 25 fps is 26 ticks, each the frame nearest in time.
  ticks, _ = video_io.read_video(vfr_video, fps=25)
  assert len(ticks) == 26
  windows = _windows(vfr_video, num_frames=5, fps=25)
  assert [w.start_frame for w in windows] == [0, 5, 10, 15, 20]
  np.testing.assert_allclose([w.start_seconds for w in windows], [0.0, 0.2, 0.4, 0.6, 0.8])
  for w in windows:
    np.testing.assert_array_equal(w.frames, ticks[w.start_frame:w.start_frame + 5])


def test_streamed_real_clip_equals_whole_video_read():
  clip = sample_clip("carphone_pristine.mp4")  # 120 frames, 29.97 fps.
  frames, fps = video_io.read_video(clip, short_side=48)
  windows = _windows(clip, num_frames=8, frame_step=2, window_stride=12, short_side=48)
  assert len(windows) == (120 - 16) // 12 + 1
  for w in windows:
    np.testing.assert_array_equal(w.frames, frames[w.start_frame:w.start_frame + 16:2])
    assert w.start_seconds == pytest.approx(w.start_frame / fps, abs=1e-3)
  idx = np.array([[0, 5, 119], [7, 7, 3]])
  np.testing.assert_array_equal(stream.read_frames_at(clip, idx, short_side=48), frames[idx])
  assert stream.count_frames(clip) == (120, pytest.approx(fps))


def test_unreadable_and_too_short_reads_raise(tmp_path, constant_video):
  bad = tmp_path / "bad.mp4"
  bad.write_bytes(b"not a video")
  with pytest.raises(video_io.VideoReadError, match="not a readable video"):
    _windows(str(bad), num_frames=4)
  with pytest.raises(video_io.VideoReadError, match="ended before frame 40"):
    stream.read_frames_at(constant_video, np.array([1, 40]))
  with pytest.raises(ValueError, match="window_stride must be >= 1"):
    _windows(constant_video, num_frames=4, window_stride=0)
