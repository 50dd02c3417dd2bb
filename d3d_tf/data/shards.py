"""Reading sharded TFRecords so that a damaged file is always named, never a hang.

  * A damaged shard (truncated file, CRC mismatch) is detected by counting the bytes read per
    file against the file's size (TensorFlow's own reader errors do not name the file).
  * A record whose framing is intact but whose content does not parse or decode (bad proto,
    undecodable JPEG/PNG, missing flow planes) is caught per record.
With `ignore_errors=False` either raises `tf.errors.InvalidArgumentError` whose message names
the file (and record index); with `ignore_errors=True` it is skipped, logged and counted in a
`SkipCounter`.
"""

import logging
import threading
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
import tensorflow as tf

from d3d_tf.data import records

AUTOTUNE = tf.data.AUTOTUNE
# Bytes a TFRecord adds around each record: length (8), length CRC (4), data CRC (4).
_TFRECORD_OVERHEAD = 16
# Shards read concurrently by one pipeline.
DEFAULT_CYCLE_LENGTH = 8
# Read buffer per remote shard: a record is a whole video (megabytes); 1 MiB reads cost less
# CPU per byte than the 256 KiB default. Local shards are read unbuffered (see `_read_buffer`).
_READ_BUFFER_BYTES = 1 << 20


class SkipCounter:
  """Counts (and logs) what a pipeline with `ignore_errors=True` skipped.

  Attributes:
    damaged_shards: Files whose TFRecord framing or CRC failed; the rest of such a file is
      unreadable, so this counts one event per damaged file, not the records lost.
    bad_records: Intact records that failed to parse or decode (or raw videos that failed to
      read), each skipped.
    events: (kind, name) per skip: kind "damaged_shard" or "bad_record", name the file path
      (and ":<record index>" for records).
  """

  def __init__(self):
    self._lock = threading.Lock()
    self.damaged_shards = 0
    self.bad_records = 0
    self.events: List[Tuple[str, str]] = []

  @property
  def total(self) -> int:
    return self.damaged_shards + self.bad_records

  def add(self, kind: str, name: str):
    with self._lock:
      if kind == "damaged_shard":
        self.damaged_shards += 1
      else:
        self.bad_records += 1
      self.events.append((kind, name))
    logging.warning("Skipped %s: %s", kind.replace("_", " "), name)

  def op(self, kind: str, name: tf.Tensor) -> tf.Tensor:
    """In-graph `add` (a `tf.py_function`, run only on the skip path)."""

    def add(n):
      self.add(kind, n.numpy().decode("utf-8", "replace"))
      return np.int64(0)

    return tf.py_function(add, [name], tf.int64)

  def __repr__(self):
    return (f"SkipCounter(damaged_shards={self.damaged_shards}, "
            f"bad_records={self.bad_records})")


def list_shards(file_pattern: Union[str, Sequence[str]]) -> Tuple[List[str], List[int]]:
  """Sorted files matching the glob pattern(s), and their sizes in bytes."""
  patterns = [file_pattern] if isinstance(file_pattern, str) else list(file_pattern)
  files = sorted({f for p in patterns for f in tf.io.gfile.glob(p)})
  if not files:
    raise ValueError(f"No files match file_pattern={file_pattern!r}.")
  return files, [int(tf.io.gfile.stat(f).length) for f in files]


def _read_buffer(path: tf.Tensor) -> tf.Tensor:
  """Read buffer bytes for a shard: none for a local file, `_READ_BUFFER_BYTES` for a URL.

  Unbuffered, a local record is read straight into its string; a buffer adds a copy of every
  video (~10% of the CPU of a 16-frame clip). Remote file systems want large reads instead.
  """
  remote = tf.strings.regex_full_match(path, "[A-Za-z][A-Za-z0-9+.-]*://.*")
  return tf.where(remote, tf.constant(_READ_BUFFER_BYTES, tf.int64), tf.constant(0, tf.int64))


def _read_shard(path: tf.Tensor, size: tf.Tensor) -> tf.data.Dataset:
  """Records of one file, each tagged with its name; plus one `damaged` marker if it is damaged.

  TFRecordDataset stops a file at its first framing/CRC error; with the error ignored, the file
  was read whole exactly when the bytes of the records read add up to the file size.
  """
  records_ds = tf.data.TFRecordDataset(path, buffer_size=_read_buffer(path)).ignore_errors()
  tagged = records_ds.map(lambda r: (r, tf.constant(False)))
  end = tf.data.Dataset.from_tensors((tf.constant(b""), tf.constant(True)))

  def step(state, item):
    consumed, index = state
    record, is_end = item
    length = tf.cast(tf.strings.length(record), tf.int64) + _TFRECORD_OVERHEAD
    element = {
        "name": records.example_name(path, index),
        "source": path,
        "serialized": record,
        "end": is_end,
        "damaged": tf.logical_and(is_end, tf.not_equal(consumed, size)),
        "bytes_read": consumed,
        "size": size,
    }
    new_state = (consumed + tf.where(is_end, tf.constant(0, tf.int64), length),
                 index + tf.where(is_end, tf.constant(0, tf.int64), 1))
    return new_state, element

  zero = tf.constant(0, tf.int64)
  scanned = tagged.concatenate(end).scan((zero, zero), step)
  return scanned.filter(lambda e: tf.logical_or(tf.logical_not(e["end"]), e["damaged"]))


def read_records(files: Sequence[str], sizes: Sequence[int], deterministic: bool,
                  cycle_length: int, shuffle_seed: Optional[int] = None,
                  repeat: bool = False) -> tf.data.Dataset:
  """Records of `files`, read `cycle_length` files at a time; shuffled files when seeded."""
  shards = tf.data.Dataset.from_tensor_slices(
      (tf.constant(files), tf.constant(sizes, tf.int64)))
  if shuffle_seed is not None:
    shards = shards.shuffle(len(files), seed=shuffle_seed, reshuffle_each_iteration=True)
  if repeat:
    shards = shards.repeat()
  return shards.interleave(
      _read_shard, cycle_length=max(1, min(len(files), cycle_length)), block_length=1,
      num_parallel_calls=AUTOTUNE, deterministic=deterministic)


def check_shards(ds: tf.data.Dataset, ignore_errors: bool,
                  counter: Optional[SkipCounter]) -> tf.data.Dataset:
  """Raises on a damaged-shard marker (naming the file), or drops and counts it."""
  if ignore_errors:
    def keep(e):
      def skip():
        with tf.control_dependencies([counter.op("damaged_shard", e["source"])]):
          return tf.constant(False)
      return tf.cond(e["damaged"], skip, lambda: tf.constant(True))
    ds = ds.filter(keep)
  else:
    def check(e):
      ok = tf.debugging.Assert(tf.logical_not(e["damaged"]), [
          "Damaged TFRecord file (truncated or corrupted; TensorFlow stopped reading it):",
          e["source"], "readable bytes:", e["bytes_read"], "file size:", e["size"],
          "Re-create the shard, or pass ignore_errors=True to skip it."], summarize=1)
      with tf.control_dependencies([ok]):
        return {k: tf.identity(v) for k, v in e.items()}
    ds = ds.map(check)
  return ds.map(lambda e: {"name": e["name"], "serialized": e["serialized"]})


def _zeros_like_spec(spec: tf.TensorSpec) -> tf.Tensor:
  shape = [0 if d is None else d for d in spec.shape.as_list()]
  if spec.dtype == tf.string:
    return tf.fill(shape, tf.constant(""))
  return tf.zeros(shape, spec.dtype)


def try_map(ds: tf.data.Dataset, fn, deterministic: bool) -> tf.data.Dataset:
  """Maps `fn` over dict elements in parallel, turning failures into flagged items.

  tf.data has no try/except; a one-element dataset that ignores its error, followed by a
  fallback element, is one: the result is `(fn(element), element["name"], True)`, or
  `(zeros, element["name"], False)` when `fn` raised. Elements run in parallel on all cores.
  """

  def attempt(element):
    single = tf.data.Dataset.from_tensors(element)
    ok = single.map(lambda e: (fn(e), e["name"], tf.constant(True))).ignore_errors()
    bad = single.map(lambda e: (tf.nest.map_structure(_zeros_like_spec, ok.element_spec[0]),
                                e["name"], tf.constant(False)))
    return ok.concatenate(bad).take(1)

  return ds.interleave(attempt, cycle_length=AUTOTUNE, block_length=1,
                       num_parallel_calls=AUTOTUNE, deterministic=deterministic)


_RECORD_ERROR_HINT = (
    "(the file's TFRecord framing is intact, so the record's content is malformed: not a "
    "SequenceExample of the d3d_tf schema, an undecodable JPEG/PNG frame, or missing flow "
    "planes with with_flow=True). Pass ignore_errors=True to skip such records.")


def check_items(ds: tf.data.Dataset, ignore_errors: bool, counter: Optional[SkipCounter],
                 what: str = "record", hint: str = _RECORD_ERROR_HINT) -> tf.data.Dataset:
  """Raises on a failed `try_map` item (naming it), or drops and counts it."""
  if ignore_errors:
    def keep(value, name, ok):
      del value
      def skip():
        with tf.control_dependencies([counter.op("bad_record", name)]):
          return tf.constant(False)
      return tf.cond(ok, lambda: tf.constant(True), skip)
    ds = ds.filter(keep)
    return ds.map(lambda value, name, ok: value)

  def check(value, name, ok):
    assertion = tf.debugging.Assert(ok, [f"Could not parse or decode {what}", name, hint])
    with tf.control_dependencies([assertion]):
      return tf.nest.map_structure(tf.identity, value)

  return ds.map(check)


def make_counter(ignore_errors: bool, skip_counter: Optional[SkipCounter]) -> Optional[SkipCounter]:
  if ignore_errors and skip_counter is None:
    return SkipCounter()
  return skip_counter
