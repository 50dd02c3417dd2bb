"""The label map file: the single source of truth for class indices, shared across splits.

Format: one class a line, `<index> <name>`, indices 0..N-1 in order; names may contain spaces
(Kinetics' "air drumming").
"""

from typing import List, Sequence

from d3d_tf.common import file_system as fs


def write_label_map(path: str, names: Sequence[str]) -> None:
  """Writes names in index order, atomically (temporary file, then rename); `path` may be a
  URL (gs://)."""
  tmp = path + ".tmp"
  with fs.open(tmp, "w", encoding="utf-8") as f:
    for index, name in enumerate(names):
      if not name or "\n" in name or name != name.strip():
        raise ValueError(f"Invalid class name {name!r} at index {index}.")
      f.write(f"{index} {name}\n")
  fs.replace(tmp, path)


def read_label_map(path: str) -> List[str]:
  """Returns the class names in index order; errors name the file and the bad line."""
  if not fs.isfile(path):
    raise FileNotFoundError(
        f"Label map {path!r} does not exist. It is written by "
        "`python -m tfrecords_tools.build_tfrecords` into its --output_dir.")
  names = []
  with fs.open(path, encoding="utf-8") as f:
    for line_number, line in enumerate(f, start=1):
      line = line.rstrip("\n")
      if not line.strip():
        continue
      index, _, name = line.partition(" ")
      if not index.isdigit() or int(index) != len(names) or not name:
        raise ValueError(
            f"{path}:{line_number}: expected '<index> <name>' with index {len(names)}. "
            f"Received: {line!r}")
      names.append(name)
  if not names:
    raise ValueError(f"Label map {path!r} is empty.")
  return names
