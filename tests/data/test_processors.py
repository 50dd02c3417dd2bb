"""Unit tests of the in-graph sampling, decoding and augmentation functions."""

import cv2
import numpy as np
import pytest
import tensorflow as tf

from d3d_tf.data import crop_boxes as C
from d3d_tf.data import processors as P
from d3d_tf.data import records

SEED = tf.constant([7, 11], tf.int64)


def test_sample_clip_indices_exact():
  got = P.sample_clip_indices(100, 10, stride=2, offset=45).numpy().tolist()
  assert got == [45, 47, 49, 51, 53, 55, 57, 59, 61, 63]


def test_short_video_loops_modulo_num_frames():
  got = P.sample_clip_indices(5, 8, stride=2, offset=0).numpy().tolist()
  assert got == [0, 2, 4, 1, 3, 0, 2, 4]
  assert P.sample_clip_indices(1, 4, stride=3, offset=0).numpy().tolist() == [0, 0, 0, 0]
  assert int(P.max_clip_offset(5, 8, 2)) == 0


def test_sample_random_offset_range_and_seed():
  offsets = {int(P.sample_random_offset(30, 8, 2, tf.constant([i, 3]))) for i in range(200)}
  assert offsets == set(range(0, 30 - 15 + 1))  # Span 15; every offset in [0, 15] drawn.
  again = int(P.sample_random_offset(30, 8, 2, SEED))
  assert again == int(P.sample_random_offset(30, 8, 2, SEED))
  assert int(P.sample_random_offset(4, 8, 1, SEED)) == 0


def test_linspace_offsets():
  # Max offset 90: the last clip ends at frame 99.
  assert P.linspace_offsets(100, 10, 1, 4).numpy().tolist() == [0, 30, 60, 90]
  assert P.linspace_offsets(100, 10, 1, 1).numpy().tolist() == [45]
  assert P.linspace_offsets(5, 10, 1, 3).numpy().tolist() == [0, 0, 0]


def test_flow_indices_reuse_last_plane():
  assert P.flow_indices(tf.constant([0, 5, 9]), 10).numpy().tolist() == [0, 5, 8]
  assert P.flow_indices(tf.constant([0, 0]), 1).numpy().tolist() == [0, 0]


def test_random_crop_params_shared_state_and_bounds():
  state = {}
  box = C.random_crop_params(48, 64, 0.08, seed=SEED, state=state)
  other = C.random_crop_params(48, 64, 0.08, seed=tf.constant([1, 2]), state=state)
  assert other is box  # The second modality reuses the first one's box.
  for i in range(100):
    b = C.random_crop_params(48, 64, 0.3, seed=tf.constant([i, 0])).numpy()
    assert 0.0 <= b[0] < b[2] <= 1.0 and 0.0 <= b[1] < b[3] <= 1.0
    area = (b[2] - b[0]) * (b[3] - b[1])
    assert 0.3 - 0.05 <= area <= 1.0
  full = C.random_crop_params(48, 64, 1.0, (64 / 48, 64 / 48), seed=SEED).numpy()
  np.testing.assert_allclose(full, [0, 0, 1, 1])


def test_box_to_pixels():
  box = tf.constant([0.25, 0.5, 0.75, 1.0])
  assert C.box_to_pixels(box, 48, 64).numpy().tolist() == [12, 32, 24, 32]


def test_crop_boxes():
  centre = C.box_to_pixels(C.center_crop_box(48, 64, 1.0), 48, 64).numpy().tolist()
  assert centre == [0, 8, 48, 48]
  three = [C.box_to_pixels(b, 48, 64).numpy().tolist() for b in C.three_crop_boxes(48, 64)]
  assert three == [[0, 0, 48, 48], [0, 8, 48, 48], [0, 16, 48, 48]]
  portrait = [C.box_to_pixels(b, 64, 48).numpy().tolist() for b in C.three_crop_boxes(64, 48)]
  assert portrait == [[0, 0, 48, 48], [8, 0, 48, 48], [16, 0, 48, 48]]
  small = C.box_to_pixels(C.center_crop_box(48, 64, 0.5), 48, 64).numpy().tolist()
  assert small == [12, 20, 24, 24]


def test_crop_and_resize_scales_flow():
  flow = tf.ones([2, 48, 64, 2]) * tf.constant([2.0, -1.0])
  out = P.crop_and_resize(flow, tf.constant([8, 16, 40, 32]), 20, is_flow=True)
  assert out.shape == (2, 20, 20, 2)
  np.testing.assert_allclose(out[..., 0].numpy(), 2.0 * 20 / 32, rtol=1e-6)
  np.testing.assert_allclose(out[..., 1].numpy(), -1.0 * 20 / 40, rtol=1e-6)
  np.testing.assert_allclose(P.flow_resize_factors(40, 32, 20).numpy(), [20 / 32, 20 / 40])
  rgb = P.crop_and_resize(tf.zeros([2, 48, 64, 3], tf.uint8), tf.constant([0, 0, 48, 64]), 16)
  assert rgb.shape == (2, 16, 16, 3) and rgb.dtype == tf.float32


def test_flip_left_right():
  frames = tf.reshape(tf.range(2 * 1 * 3 * 2, dtype=tf.float32), [2, 1, 3, 2])
  flipped = P.flip_left_right(frames).numpy()
  np.testing.assert_array_equal(flipped, frames.numpy()[:, :, ::-1])
  flow = P.flip_left_right(frames, is_flow=True).numpy()
  np.testing.assert_array_equal(flow[..., 0], -frames.numpy()[:, :, ::-1, 0])
  np.testing.assert_array_equal(flow[..., 1], frames.numpy()[:, :, ::-1, 1])
  kept = P.maybe_flip_left_right(frames, tf.constant(False), is_flow=True).numpy()
  np.testing.assert_array_equal(kept, frames.numpy())
  images = np.random.default_rng(0).integers(0, 256, (2, 5, 7, 3)).astype(np.uint8)
  np.testing.assert_array_equal(P.flip_left_right(tf.constant(images)).numpy(),
                                images[:, :, ::-1])


def test_random_flip_params_shared_and_balanced():
  state = {}
  flip = P.random_flip_params(SEED, state=state)
  assert P.random_flip_params(tf.constant([5, 5]), state=state) is flip
  draws = [bool(P.random_flip_params(tf.constant([i, 1]))) for i in range(200)]
  assert 60 < sum(draws) < 140


def test_normalize_rgb_and_scale_flow():
  rgb = P.normalize_rgb(tf.constant([0, 255, 127], tf.uint8)).numpy()
  np.testing.assert_allclose(rgb, [-1.0, 1.0, 127 / 127.5 - 1.0], atol=1e-6)
  assert P.normalize_rgb(tf.constant([0], tf.uint8)).dtype == tf.float32
  np.testing.assert_allclose(P.scale_flow(tf.constant([-20.0, 5.0]), 20.0).numpy(), [-1, 0.25])


def test_normalize_rgb_uint8_is_normalize_rgb_bit_for_bit():
  levels = tf.cast(tf.range(256), tf.uint8)
  fused = P.normalize_rgb_uint8(levels)
  assert fused.dtype == tf.float32
  np.testing.assert_array_equal(fused.numpy(), P.normalize_rgb(levels).numpy())
  assert fused.numpy()[0] == -1.0 and fused.numpy()[255] == 1.0


@pytest.mark.parametrize("height,width", [(9, 13), (40, 50)])  # Normalized first; resized first.
def test_resize_rgb_equals_resize_then_normalize(height, width):
  frames = np.random.default_rng(3).integers(0, 256, (2, height, width, 3)).astype(np.uint8)
  got = P.resize_rgb(tf.constant(frames), 8)
  assert got.shape == (2, 8, 8, 3) and got.dtype == tf.float32
  expected = P.normalize_rgb(P.resize(frames, 8)).numpy()
  np.testing.assert_allclose(got.numpy(), expected, atol=1e-6)


@pytest.mark.parametrize("dtype,channels", [(np.uint8, 2), (np.uint8, 4), (np.float32, 1),
                                            (np.uint8, 3)])
def test_flip_left_right_moves_whole_pixels(dtype, channels):
  frames = np.random.default_rng(4).integers(0, 256, (2, 3, 5, channels)).astype(dtype)
  np.testing.assert_array_equal(P.flip_left_right(tf.constant(frames)).numpy(),
                                frames[:, :, ::-1])
  unknown = tf.function(P.flip_left_right,
                        input_signature=[tf.TensorSpec([None] * 4, tf.as_dtype(dtype))])
  np.testing.assert_array_equal(unknown(frames).numpy(), frames[:, :, ::-1])


def test_dequantize_flow_unit_is_flow_over_bound():
  q = tf.cast(tf.range(256), tf.uint8)
  np.testing.assert_allclose(P.dequantize_flow_unit(q).numpy(),
                             (P.dequantize_flow(q, 20.0) / 20.0).numpy(), atol=1e-6)


def _jpegs(frames):
  return tf.constant([cv2.imencode(".jpg", f[..., ::-1])[1].tobytes() for f in frames])


def test_decode_jpeg_frames_with_window():
  rng = np.random.default_rng(0)
  frames = cv2.GaussianBlur(rng.uniform(0, 255, (48, 64, 3)).astype(np.float32), (0, 0), 2)
  frames = np.stack([frames.astype(np.uint8)] * 3)
  encoded = _jpegs(frames)
  full = P.decode_jpeg_frames(encoded).numpy()
  assert full.shape == (3, 48, 64, 3) and full.dtype == np.uint8
  assert np.abs(full.astype(int) - frames).mean() < 3
  window = tf.constant([8, 16, 24, 32])
  cropped = P.decode_jpeg_frames(encoded, crop_window=window).numpy()
  assert cropped.shape == (3, 24, 32, 3)
  diff = np.abs(cropped.astype(int) - full[:, 8:32, 16:48])
  # Identical inside; chroma upsampling at the window's edge may differ by a few levels.
  np.testing.assert_array_equal(diff[:, 1:-1, 1:-1], 0)
  assert diff.max() <= 8
  assert P.jpeg_shape(encoded[0])[0].numpy() == 48


def test_decode_flow_planes_and_dequantize():
  flow = np.stack([np.full((2, 4, 5), 3.0), np.full((2, 4, 5), -7.5)], axis=-1)
  q = records.quantize_flow(flow, 20.0)
  enc_x = tf.constant([cv2.imencode(".png", p[..., 0])[1].tobytes() for p in q])
  enc_y = tf.constant([cv2.imencode(".png", p[..., 1])[1].tobytes() for p in q])
  decoded = P.decode_flow_planes(enc_x, enc_y)
  assert decoded.dtype == tf.uint8 and decoded.shape == (2, 4, 5, 2)
  np.testing.assert_array_equal(decoded.numpy(), q)
  out = P.dequantize_flow(decoded, 20.0).numpy()
  np.testing.assert_allclose(out, records.dequantize_flow(q, 20.0), atol=1e-5)
  np.testing.assert_allclose(out, flow, atol=20.0 / 255 + 1e-6)


@pytest.mark.parametrize("extension", [".png", ".jpg"])
def test_decode_flow_window_equals_decode_then_crop(extension):
  rng = np.random.default_rng(3)
  q = np.stack([cv2.GaussianBlur(rng.uniform(0, 255, (40, 56, 2)).astype(np.float32), (0, 0),
                                 2.0) for _ in range(3)]).astype(np.uint8)
  enc_x, enc_y = (tf.constant([cv2.imencode(extension, np.ascontiguousarray(p[..., c]))[1]
                               .tobytes() for p in q]) for c in (0, 1))
  window = tf.constant([5, 9, 20, 30])
  out = P.decode_flow_window(enc_x, enc_y, window, is_jpeg=extension == ".jpg").numpy()
  full = P.decode_flow_planes(enc_x, enc_y).numpy()
  assert out.shape == (3, 20, 30, 2) and out.dtype == np.uint8
  # Grayscale JPEG has no chroma to upsample: the window is exact, even on its border.
  np.testing.assert_array_equal(out, full[:, 5:25, 9:39])
  if extension == ".png":
    np.testing.assert_array_equal(full, q)
  else:
    error = np.abs(full.astype(int) - q)  # Quality 95 on a smooth plane.
    assert error.mean() < 1.0 and error.max() <= 6


def test_quantized_flip_negates_x_exactly():
  rng = np.random.default_rng(1)
  q = rng.integers(0, 256, (2, 3, 4, 2)).astype(np.uint8)
  flipped = P.flip_left_right(tf.constant(q), is_flow=True)
  expected = P.flip_left_right(P.dequantize_flow(q, 20.0), is_flow=True)
  np.testing.assert_allclose(P.dequantize_flow(flipped, 20.0).numpy(), expected.numpy(),
                             atol=1e-5)


def test_quantized_flip_is_mirror_with_x_inverted():
  q = np.random.default_rng(4).integers(0, 256, (2, 3, 5, 2)).astype(np.uint8)
  expected = q[:, :, ::-1].copy()
  expected[..., 0] = 255 - expected[..., 0]
  np.testing.assert_array_equal(P.flip_left_right(tf.constant(q), is_flow=True).numpy(),
                                expected)


@pytest.mark.parametrize("shape", [(1, 1, 1), (3, 7, 5), (4, 2, 9)])
def test_pair_planes_interleaves_x_then_y(shape):
  rng = np.random.default_rng(5)
  x, y = (rng.integers(0, 256, shape).astype(np.uint8) for _ in range(2))
  paired = P.pair_planes(tf.constant(x), tf.constant(y))
  assert paired.dtype == tf.uint8 and paired.shape == shape + (2,)
  np.testing.assert_array_equal(paired.numpy(), np.stack([x, y], axis=-1))


def test_dequantize_commutes_with_resize():
  rng = np.random.default_rng(2)
  q = rng.integers(0, 256, (2, 9, 13, 2)).astype(np.uint8)
  a = P.dequantize_flow(P.resize(q, 5), 20.0).numpy()
  b = P.resize(P.dequantize_flow(q, 20.0), 5).numpy()
  np.testing.assert_allclose(a, b, atol=1e-4)


@pytest.mark.parametrize("bad", [0.0, 1.5])
def test_random_crop_params_rejects_bad_min_area(bad):
  with pytest.raises(ValueError, match="min_area"):
    C.random_crop_params(48, 64, bad, seed=SEED)
