"""Writes a run's settings as an absl flagfile, so `--flagfile=<model_dir>/flags.txt` reruns it."""

from typing import Any, Iterable, Tuple


def to_flagfile(items: Iterable[Tuple[str, Any]]) -> str:
  """`--name=value` lines for (flag name, value) pairs; None is left out, booleans become
  `--name` / `--noname` and sequences comma-separated lists (absl's DEFINE_list syntax)."""
  lines = []
  for name, value in items:
    if value is None:
      continue
    if isinstance(value, bool):
      lines.append(f"--{name}" if value else f"--no{name}")
    elif isinstance(value, (tuple, list)):
      lines.append(f"--{name}={','.join(str(v) for v in value)}")
    else:
      lines.append(f"--{name}={value}")
  return "\n".join(lines) + "\n"
