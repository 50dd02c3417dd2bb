"""TF Serving warm-up records, so the first live request does not pay graph initialisation.

TF Serving replays `assets.extra/tf_serving_warmup_requests` (a TFRecord file of
`PredictionLog` protos) when it loads a model version, before it marks the version available.
We write one `PredictLog` per signature with a request shaped like a real one.
"""

import os
from typing import List, Sequence

import numpy as np
import tensorflow as tf

WARMUP_DIR = "assets.extra"
WARMUP_FILE = "tf_serving_warmup_requests"


def _apis():
  try:
    from tensorflow_serving.apis import model_pb2  # pylint: disable=g-import-not-at-top
    from tensorflow_serving.apis import predict_pb2  # pylint: disable=g-import-not-at-top
    from tensorflow_serving.apis import prediction_log_pb2  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise ImportError("Writing TF Serving warm-up requests needs tensorflow-serving-api: "
                      "pip install tensorflow-serving-api") from e
  return model_pb2, predict_pb2, prediction_log_pb2


def warmup_frames(num_frames: int = 16, height: int = 128, width: int = 171) -> np.ndarray:
  """uint8 [1, T, H, W, 3] smooth gradient frames (JPEG-friendly, not all one value)."""
  y = np.linspace(0, 255, height, dtype=np.float32)[:, None]
  x = np.linspace(0, 255, width, dtype=np.float32)[None, :]
  base = np.stack([np.broadcast_to(y, (height, width)), np.broadcast_to(x, (height, width)),
                   np.full((height, width), 128.0, np.float32)], axis=-1)
  frames = [np.roll(base, 2 * t, axis=1) for t in range(num_frames)]
  return np.stack(frames)[None].astype(np.uint8)


def prediction_logs(model_name: str, frames: np.ndarray) -> List:
  """`PredictionLog`s: one `serving_default` request (uint8 frames) and one `predict_jpeg`."""
  model_pb2, predict_pb2, prediction_log_pb2 = _apis()
  jpegs = np.array([[tf.io.encode_jpeg(f, quality=90).numpy() for f in video]
                    for video in frames], dtype=object)
  logs = []
  for signature, key, value in (("serving_default", "frames", frames),
                                ("predict_jpeg", "jpeg_frames", jpegs)):
    request = predict_pb2.PredictRequest(
        model_spec=model_pb2.ModelSpec(name=model_name, signature_name=signature))
    request.inputs[key].CopyFrom(tf.make_tensor_proto(value))
    logs.append(prediction_log_pb2.PredictionLog(
        predict_log=prediction_log_pb2.PredictLog(request=request)))
  return logs


def write_warmup_requests(export_dir: str, model_name: str, frames: np.ndarray) -> str:
  """Writes `<export_dir>/assets.extra/tf_serving_warmup_requests`; returns its path."""
  directory = os.path.join(export_dir, WARMUP_DIR)
  tf.io.gfile.makedirs(directory)
  path = os.path.join(directory, WARMUP_FILE)
  with tf.io.TFRecordWriter(path) as writer:
    for log in prediction_logs(model_name, frames):
      writer.write(log.SerializeToString())
  return path


def read_warmup_requests(path: str) -> Sequence:
  """The `PredictionLog`s of a warm-up file (for tests and inspection)."""
  _, _, prediction_log_pb2 = _apis()
  return [prediction_log_pb2.PredictionLog.FromString(r.numpy())
          for r in tf.data.TFRecordDataset(path)]
