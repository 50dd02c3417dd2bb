"""Paths that may be URLs: a local path goes to `os` and `open` exactly as before, and a URL
(`gs://bucket/...`, `ram://...`) to `tf.io.gfile`, so a dataset or output folder can live on any
file system TensorFlow implements.

Local paths never import TensorFlow: the converter's worker processes must stay free of it.
TensorFlow 2.21 implements gs:// and ram:// (in memory, one process); s3:// and hdfs:// need
tensorflow-io or a mount, and using them raises `UnsupportedFileSystemError` saying so.
"""

import builtins
import contextlib
import glob as glob_lib
import io
import os
import tempfile
from typing import Iterator, List


class UnsupportedFileSystemError(ValueError):
  """A URL whose scheme this TensorFlow has no file system for (s3://, hdfs://)."""


def is_url(path) -> bool:
  return "://" in os.fspath(path)


def _gfile(path: str):
  """`tf.io.gfile`, once `path`'s scheme is known to be one TensorFlow implements."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  scheme = path.split("://", 1)[0]
  if scheme not in tf.io.gfile.get_registered_schemes():
    raise UnsupportedFileSystemError(
        f"{path!r}: TensorFlow has no file system for {scheme}:// (it has "
        f"{', '.join(s + '://' for s in tf.io.gfile.get_registered_schemes() if s)} and local "
        "paths); mount it (s3fs, Mountpoint for Amazon S3, an HDFS FUSE mount) and pass the "
        "mount's path, copy the data to a local disk, or install tensorflow-io.")
  return tf.io.gfile


def check(path) -> None:
  """Raises `UnsupportedFileSystemError` now for a URL no later call could use."""
  if path and is_url(path):
    _gfile(os.fspath(path))


def exists(path: str) -> bool:
  return _gfile(path).exists(path) if is_url(path) else os.path.exists(path)


def isdir(path: str) -> bool:
  return _gfile(path).isdir(path) if is_url(path) else os.path.isdir(path)


def isfile(path: str) -> bool:
  if is_url(path):
    gfile = _gfile(path)
    return gfile.exists(path) and not gfile.isdir(path)
  return os.path.isfile(path)


def listdir(path: str) -> List[str]:
  """Entry names; object stores mark folders with a trailing '/', dropped here."""
  if is_url(path):
    return [name.rstrip("/") for name in _gfile(path).listdir(path)]
  return os.listdir(path)


def makedirs(path: str) -> None:
  if is_url(path):
    _gfile(path).makedirs(path)
  else:
    os.makedirs(path, exist_ok=True)


def glob(folder: str, pattern: str) -> List[str]:
  """Paths in `folder` (taken literally) that match `pattern`."""
  if is_url(folder):
    return _gfile(folder).glob(folder.rstrip("/") + "/" + pattern)
  return glob_lib.glob(os.path.join(glob_lib.escape(folder), pattern))


def replace(source: str, target: str) -> None:
  """`os.replace`; on object stores a copy and delete, so atomic only where the store is."""
  if is_url(source):
    _gfile(source).rename(source, target, overwrite=True)
  else:
    os.replace(source, target)


def remove(path: str) -> None:
  if is_url(path):
    _gfile(path).remove(path)
  else:
    os.remove(path)


def fsync(path: str) -> None:
  """Flushes a written file to disk; a no-op for URLs, whose stores commit on close."""
  if not is_url(path):
    with builtins.open(path, "rb") as f:
      os.fsync(f.fileno())


class _TextWriter(io.StringIO):
  """Text for a URL, written as one object when closed (stores have no partial writes)."""

  def __init__(self, path: str, encoding: str):
    super().__init__()
    self._path, self._encoding = path, encoding

  def close(self):
    if not self.closed:
      with _gfile(self._path).GFile(self._path, "wb") as f:
        f.write(self.getvalue().encode(self._encoding))
    super().close()


def open(path: str, mode: str = "r", encoding: str = "utf-8",  # pylint: disable=redefined-builtin
         errors: str = "strict", newline=None):
  """`open` for a local path; for a URL a file with the same text decoding and newlines."""
  if not is_url(path):
    if "b" in mode:
      return builtins.open(path, mode)
    return builtins.open(path, mode, encoding=encoding, errors=errors, newline=newline)
  gfile = _gfile(path)
  if "b" in mode:
    return gfile.GFile(path, mode)
  if mode == "w":
    return _TextWriter(path, encoding)
  if mode != "r":
    raise ValueError(f"mode must be 'r', 'w', 'rb' or 'wb' for a URL. Received: mode={mode!r}")
  with gfile.GFile(path, "rb") as f:
    return io.StringIO(f.read().decode(encoding, errors), newline=newline)


@contextlib.contextmanager
def local_copy(path: str) -> Iterator[str]:
  """A local path with `path`'s bytes, for readers that need one (PyAV): `path` itself when
  local or missing (the reader reports it), else a temporary copy deleted afterwards."""
  if not is_url(path) or not exists(path):
    yield path
    return
  handle, copy = tempfile.mkstemp(suffix=os.path.splitext(path)[1], prefix="d3d_tf_")
  os.close(handle)
  try:
    _gfile(path).copy(path, copy, overwrite=True)
    yield copy
  finally:
    os.remove(copy)
