"""Videos from records: a parsed SequenceExample whose sampled frames are decoded in-graph.

Only the frames a clip samples are decoded, each distinct frame once. Training crops decode
just their window (`tf.io.decode_and_crop_jpeg`), of JPEG flow planes too (PNG planes are
decoded whole and cut); evaluation decodes whole frames once and cuts every crop from them.
Flow planes stay quantized (uint8) through crop and flip and are dequantized straight into
units of the bound before the resize (exact up to float rounding: dequantization is affine and
commutes with the resize).
"""

from typing import Callable, Dict

import tensorflow as tf

from d3d_tf.data import builders
from d3d_tf.data import processors
from d3d_tf.data import records


def _decode_unique(indices: tf.Tensor,
                   decode_at: Callable[[tf.Tensor], tf.Tensor]) -> tf.Tensor:
  """`decode_at(indices)`, decoding each distinct index once (short videos repeat frames)."""
  unique, position = tf.unique(indices)
  return tf.cond(
      tf.equal(tf.size(unique), tf.size(indices)),
      lambda: decode_at(indices),
      lambda: tf.gather(decode_at(unique), position))


def _decode_jpegs_at(jpegs: tf.Tensor, indices: tf.Tensor, window=None) -> tf.Tensor:
  return _decode_unique(
      indices, lambda i: processors.decode_jpeg_frames(tf.gather(jpegs, i), crop_window=window))


def _flow_planes(flow_x: tf.Tensor, flow_y: tf.Tensor, indices: tf.Tensor,
                 num_frames: tf.Tensor, name: tf.Tensor, flow_format: tf.Tensor,
                 size=None) -> builders.Planes:
  """The quantized flow planes of frame `indices` (flow i: frame i -> i + 1; see
  `processors.flow_indices`); a 1-frame video has none and gets zero flow.

  With `size`, the (H, W) of the RGB frames the planes share, only the crop window is decoded
  (JPEG planes; PNG ones are decoded whole and cut): the training path.
  """
  num_planes = tf.shape(flow_x)[0]
  check = tf.debugging.Assert(
      tf.logical_and(tf.equal(num_planes, num_frames - 1),
                     tf.equal(tf.shape(flow_y)[0], num_planes)),
      ["Record has no (or incomplete) flow planes; convert it with flow or use "
       "with_flow=False:", name, "frames:", num_frames, "flow planes:", num_planes])
  with tf.control_dependencies([check]):
    present = tf.identity(num_planes > 0)
  plane_indices = processors.flow_indices(indices, num_frames)
  if size is not None:
    is_jpeg = tf.equal(flow_format, b"jpeg")
    return builders.Planes(
        decode_window=lambda window: _decode_unique(
            plane_indices, lambda i: processors.decode_flow_window(
                tf.gather(flow_x, i), tf.gather(flow_y, i), window, is_jpeg)),
        size=size, to_unit=processors.dequantize_flow_unit, present=present)
  return builders.Planes(
      decode=lambda: _decode_unique(
          plane_indices,
          lambda i: processors.decode_flow_planes(tf.gather(flow_x, i), tf.gather(flow_y, i))),
      to_unit=processors.dequantize_flow_unit, present=present)


def opener(config: builders.ClipConfig,
           training: bool) -> Callable[[Dict[str, tf.Tensor]], builders.Video]:
  """Returns `open(element) -> Video` for elements {"serialized", "name"} of `shards`."""

  def open_video(element):
    name = element["name"]
    context, sequence = records.parse_sequence_example(
        element["serialized"], config.with_flow, example_name=name)
    jpegs = sequence[records.RGB_JPEG]
    num_frames = tf.shape(jpegs)[0]
    height, width = processors.jpeg_shape(jpegs[0])

    def read(indices):
      planes = {}
      if config.with_rgb and training:
        planes[records.RGB] = builders.Planes(
            decode_window=lambda window: _decode_jpegs_at(jpegs, indices, window),
            size=(height, width))
      elif config.with_rgb:
        planes[records.RGB] = builders.Planes(decode=lambda: _decode_jpegs_at(jpegs, indices))
      if config.with_flow:
        planes[records.FLOW] = _flow_planes(
            sequence[records.FLOW_X], sequence[records.FLOW_Y], indices, num_frames, name,
            context[records.FLOW_FORMAT], size=(height, width) if training else None)
      return builders.Clip(planes, height, width)

    return builders.Video(num_frames, tf.cast(context[records.LABEL_INDEX], tf.int32),
                          context[records.VIDEO_ID], read)

  return open_video
