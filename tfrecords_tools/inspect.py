r"""Prints one record's metadata and draws its frames above their optical flow.

The contact sheet's top row is RGB frames; the row below shows the flow from each frame to the
next as a colour wheel (hue = direction, brightness = speed, one scale for the whole sheet), so
you can check at a glance that the flow moves where the frames move.

Usage:

  python -m tfrecords_tools.inspect /data/records/train-00000-of-00010.tfrecord --index=3 \
      --output=/tmp/record3.png
"""

import dataclasses
import os
from typing import Optional

import cv2
import numpy as np

from d3d_tf.common import cli
from d3d_tf.common import config_lib
from d3d_tf.video import optical_flow

_flag = config_lib.flag


@dataclasses.dataclass
class InspectConfig(config_lib.CommandConfig):
  """What to draw; each field but `record_file` (the positional argument) is a flag."""
  index: int = _flag(0, "Which record of the file, counting from 0.", lower=0)
  output: Optional[str] = _flag(
      None, "Where to write the PNG contact sheet; default <record file>-<index>.png in the "
      "current folder.")
  num_frames: int = _flag(8, "Frames (columns) on the sheet.", lower=1)
  tile_height: int = _flag(128, "Height of each picture on the sheet.", lower=16)
  record_file: str = _flag("", "The TFRecord file (the command's one argument).", flag=False)


cli.define(InspectConfig)


def read_record(path: str, index: int):
  """The `index`-th SequenceExample of a TFRecord file, and how many records the file holds."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  found, count = None, 0
  for serialized in tf.data.TFRecordDataset(path).as_numpy_iterator():
    if count == index:
      found = tf.train.SequenceExample.FromString(serialized)
    count += 1
  if found is None:
    raise IndexError(f"{path} holds {count} records; --index={index} is out of range.")
  return found, count


def _context_value(feature):
  kind = feature.WhichOneof("kind")
  values = list(getattr(feature, kind).value)
  if kind == "bytes_list":
    values = [v.decode("utf-8", "replace") for v in values]
  elif kind == "float_list":
    values = [round(v, 4) for v in values]
  return values[0] if len(values) == 1 else values


def describe(example) -> str:
  """Context keys and values, and per feature list its length and encoded sizes."""
  lines = [f"  {key}: {_context_value(example.context.feature[key])}"
           for key in sorted(example.context.feature)]
  for key in sorted(example.feature_lists.feature_list):
    blobs = [f.bytes_list.value[0] for f in example.feature_lists.feature_list[key].feature]
    sizes = [len(blob) for blob in blobs]
    mean = sum(sizes) / len(sizes) / 1024 if sizes else 0.0
    lines.append(f"  {key}: {len(blobs)} items, {mean:.1f} KiB each on average")
  return "\n".join(lines)


def _decode(blob: bytes, flags_: int) -> np.ndarray:
  image = cv2.imdecode(np.frombuffer(blob, np.uint8), flags_)
  if image is None:
    raise ValueError("An encoded image in the record could not be decoded.")
  return image


HEADER = 20  # Pixels of title strip above the tiles.


def _text(image: np.ndarray, text: str, origin, scale: float = 0.8) -> None:
  """White text with a black outline: readable on any frame."""
  cv2.putText(image, text, origin, cv2.FONT_HERSHEY_PLAIN, scale, (0, 0, 0), 2)
  cv2.putText(image, text, origin, cv2.FONT_HERSHEY_PLAIN, scale, (255, 255, 255), 1)


def _title(example, max_magnitude: float) -> str:
  from d3d_tf.data import records  # pylint: disable=g-import-not-at-top
  context = example.context.feature
  parts = [str(_context_value(context[k])) for k in (records.VIDEO_ID,) if k in context]
  if records.LABEL_NAME in context:
    label = _context_value(context[records.LABEL_NAME])
    index = (_context_value(context[records.LABEL_INDEX])
             if records.LABEL_INDEX in context else "?")
    parts.append(f"label {label} ({index})")
  if max_magnitude:
    parts.append(f"flow: full colour = {max_magnitude:.2f} px/frame")
  return " | ".join(parts)


def _flow_key(size: int, max_magnitude: float) -> np.ndarray:
  """A colour wheel: the colour of each flow direction, brighter with speed up to the scale."""
  ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
  centre = (size - 1) / 2.0
  flow = np.stack([xs - centre, ys - centre], axis=-1) * (max_magnitude / centre)
  wheel = optical_flow.flow_to_color(flow[None], max_magnitude=max_magnitude)[0].copy()
  wheel[np.hypot(xs - centre, ys - centre) > centre] = 255
  _text(wheel, "key", (2, 12))
  return wheel


def contact_sheet(example, num_frames: int = 8, tile_height: int = 128):
  """A uint8 RGB sheet under a title (video, label, flow scale): frames in the top row, their
  flow as colour below, with a colour-wheel key beside it.

  Returns:
    (sheet, max_magnitude): the picture and the speed, in pixels per frame, of full brightness.
  """
  from d3d_tf.data import records  # pylint: disable=g-import-not-at-top
  lists = example.feature_lists.feature_list
  jpegs = [f.bytes_list.value[0] for f in lists[records.RGB_JPEG].feature]
  flow_x = [f.bytes_list.value[0] for f in lists[records.FLOW_X].feature] if (
      records.FLOW_X in lists) else []
  flow_y = [f.bytes_list.value[0] for f in lists[records.FLOW_Y].feature] if (
      records.FLOW_Y in lists) else []
  bound = example.context.feature[records.FLOW_BOUND].float_list.value[0]
  # Columns spread over the frames that have a flow pair, so every column has both rows.
  span = len(flow_x) if flow_x else len(jpegs)
  columns = sorted({int(round(i)) for i in np.linspace(0, max(span - 1, 0), num_frames)})
  frames = [cv2.cvtColor(_decode(jpegs[i], cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
            for i in columns]
  rows = [frames]
  max_magnitude = 0.0
  if flow_x:
    flows = [np.stack([_decode(flow_x[i], cv2.IMREAD_UNCHANGED),
                       _decode(flow_y[i], cv2.IMREAD_UNCHANGED)], axis=-1) for i in columns]
    flows = records.dequantize_flow(np.stack(flows), bound)
    magnitude = np.linalg.norm(flows, axis=-1)
    # The 99th percentile, not the maximum, so one outlier pixel does not darken the rest.
    max_magnitude = max(float(np.percentile(magnitude, 99)), 1e-3)
    rows.append(list(optical_flow.flow_to_color(flows, max_magnitude=max_magnitude)))
  height, width = frames[0].shape[:2]
  tile_width = max(1, int(round(width * tile_height / height)))
  gap = 2
  key = _flow_key(tile_height, max_magnitude) if flow_x else None
  grid_width = len(columns) * (tile_width + gap) - gap
  sheet = np.full((HEADER + len(rows) * (tile_height + gap) - gap,
                   grid_width + (gap + tile_height if key is not None else 0), 3), 255, np.uint8)
  cv2.putText(sheet, _title(example, max_magnitude), (2, 14), cv2.FONT_HERSHEY_PLAIN, 0.9,
              (0, 0, 0), 1)
  for r, row in enumerate(rows):
    for c, tile in enumerate(row):
      tile = cv2.resize(tile, (tile_width, tile_height), interpolation=cv2.INTER_AREA)
      _text(tile, f"t={columns[c]}" if r == 0 else f"{columns[c]}>{columns[c] + 1}", (2, 12))
      y, x = HEADER + r * (tile_height + gap), c * (tile_width + gap)
      sheet[y:y + tile_height, x:x + tile_width] = tile
  if key is not None:  # Beside the flow row: which colour is which direction.
    y = HEADER + tile_height + gap
    sheet[y:y + tile_height, grid_width + gap:] = key
  return sheet, max_magnitude


def _what_it_is(path: str) -> str:
  from d3d_tf import video  # pylint: disable=g-import-not-at-top
  if path.lower().endswith(tuple(video.VIDEO_EXTENSIONS)):
    return "a video file: convert it with tfrecords_tools.build_tfrecords first"
  return "its bytes are not TFRecord framing"


def main(argv):
  if len(argv) != 2:
    cli.fail("inspect", "pass exactly one RECORD_FILE, e.g. python -m tfrecords_tools.inspect "
                        "out/train-00000-of-00001.tfrecord")
  config = dataclasses.replace(cli.config(InspectConfig), record_file=argv[1])
  path = config.record_file
  if not os.path.isfile(path):
    cli.fail("inspect", f"RECORD_FILE {path!r} does not exist")
  cli.quiet_tensorflow()
  try:
    example, count = read_record(path, config.index)
  except IndexError as e:
    cli.fail("inspect", e)
  except Exception:  # pylint: disable=broad-except  (tf.errors.DataLossError, DecodeError)
    cli.fail("inspect", f"{path!r} is not a TFRecord file of SequenceExamples "
                        f"({_what_it_is(path)}); inspect reads the shards build_tfrecords and "
                        "make_synthetic write")
  print(f"{path}: record {config.index} of {count}")
  print(describe(example))
  sheet, max_magnitude = contact_sheet(example, config.num_frames, config.tile_height)
  output = config.output or (
      f"{os.path.splitext(os.path.basename(path))[0]}-{config.index}.png")
  if not cv2.imwrite(output, cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR)):
    cli.fail("inspect", f"could not write --output={output!r}")
  scale = f"; flow colour at full brightness = {max_magnitude:.2f} px/frame" if (
      max_magnitude) else "; no flow in this record"
  print(f"wrote {output} ({sheet.shape[1]}x{sheet.shape[0]}){scale}")


if __name__ == "__main__":
  cli.run(main, "inspect", InspectConfig)
