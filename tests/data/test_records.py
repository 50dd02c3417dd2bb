"""The record schema: quantized flow round trip, and what a written record parses back to."""

import cv2
import numpy as np
import pytest
import tensorflow as tf

from d3d_tf.data import records
from tfrecords_tools import flow as flow_lib


def _png(plane: np.ndarray) -> bytes:
  return cv2.imencode(".png", plane)[1].tobytes()


def test_quantize_flow_round_trip_is_within_half_a_step():
  bound = 20.0
  flow = np.random.default_rng(0).uniform(-bound, bound, size=(3, 16, 16, 2)).astype(np.float32)
  restored = records.dequantize_flow(records.quantize_flow(flow, bound), bound)
  step = 2 * bound / 255
  assert np.abs(restored - flow).max() <= step / 2 + 1e-5


def test_quantize_flow_clips_to_the_bound_and_maps_ends_to_0_and_255():
  quantized = records.quantize_flow(np.array([-100.0, -20.0, 0.0, 20.0, 100.0]), 20.0)
  np.testing.assert_array_equal(quantized, [0, 0, 128, 255, 255])


def test_dequantize_flow_agrees_between_numpy_and_tensorflow():
  quantized = np.arange(256, dtype=np.uint8)
  np.testing.assert_allclose(records.dequantize_flow(tf.constant(quantized), 8.0).numpy(),
                             records.dequantize_flow(quantized, 8.0), atol=1e-5)


def test_worker_quantizer_matches_the_schema():
  # Workers quantize without TensorFlow; their copy must stay equal to the schema's.
  flow = np.random.default_rng(1).normal(0, 15, size=(4, 9, 7, 2)).astype(np.float32)
  for bound in (5.0, 20.0):
    np.testing.assert_array_equal(flow_lib.quantize_flow(flow, bound),
                                  records.quantize_flow(flow, bound))


def test_png_flow_planes_survive_the_record_exactly():
  flow = np.random.default_rng(2).uniform(-25, 25, size=(2, 8, 10, 2)).astype(np.float32)
  quantized = records.quantize_flow(flow, 20.0)
  jpegs = [cv2.imencode(".jpg", np.zeros((8, 10, 3), np.uint8))[1].tobytes()] * 3
  example = records.make_sequence_example(
      "clip", 4, "jump", 25.0, 8, 10, jpegs,
      flow_x=[_png(q[..., 0]) for q in quantized], flow_y=[_png(q[..., 1]) for q in quantized],
      flow_algorithm="dis", flow_bound=20.0, flow_seconds=1.5)
  context, sequence = records.parse_sequence_example(
      tf.constant(example.SerializeToString()))
  assert context[records.VIDEO_ID].numpy() == b"clip"
  assert int(context[records.LABEL_INDEX]) == 4
  assert int(context[records.NUM_FRAMES]) == 3
  assert context[records.FLOW_ALGORITHM].numpy() == b"dis"
  assert float(context[records.FLOW_SECONDS]) == pytest.approx(1.5)
  decoded = np.stack([tf.io.decode_png(sequence[records.FLOW_X][i]).numpy()[..., 0]
                      for i in range(2)])
  np.testing.assert_array_equal(decoded, quantized[..., 0])
  restored = records.dequantize_flow(decoded, 20.0)
  clipped = np.clip(flow[..., 0], -20, 20)
  assert np.abs(restored - clipped).max() <= 20.0 / 255 + 1e-5


def test_flow_lists_must_have_one_plane_per_frame_pair():
  jpegs = [b"a", b"b", b"c"]
  with pytest.raises(ValueError, match="Expected 2 flow planes"):
    records.make_sequence_example("v", 0, "a", 25.0, 2, 2, jpegs, flow_x=[b"x"], flow_y=[b"y"])
