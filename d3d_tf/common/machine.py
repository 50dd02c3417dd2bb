"""The machine a run or a report was made on, read from the machine itself.

Figures move across CPUs (oneDNN picks kernels per CPU), so every table we generate names the
CPU model, its core count and the GPUs TensorFlow sees, never a description typed by hand.
"""

import os
import platform
import sys
from typing import List


def cpu_model() -> str:
  """The CPU's model name (`/proc/cpuinfo` on Linux), else what `platform` knows."""
  try:
    with open("/proc/cpuinfo", encoding="utf-8") as f:
      for line in f:
        if line.lower().startswith("model name"):
          return line.split(":", 1)[1].strip()
  except OSError:
    pass
  return platform.processor() or platform.machine() or "unknown CPU"


def cpu_count() -> int:
  """CPUs this process may run on (the affinity mask where there is one)."""
  try:
    return len(os.sched_getaffinity(0))
  except AttributeError:
    return os.cpu_count() or 1


def gpus() -> List[str]:
  """Names of the GPUs TensorFlow sees; empty when there are none or TF is not imported yet
  (importing it here would make a report slow for nothing)."""
  tf = sys.modules.get("tensorflow")
  if tf is None:
    return []
  names = []
  for device in tf.config.list_physical_devices("GPU"):
    details = tf.config.experimental.get_device_details(device)
    names.append(details.get("device_name", device.name))
  return names


def describe() -> str:
  """`AMD EPYC 9R45, 2 CPUs, no GPU`: one phrase for a report's header."""
  found = gpus()
  gpu_text = "no GPU"
  if found:
    plural = "s" if len(found) > 1 else ""
    gpu_text = f"{len(found)} GPU{plural} ({', '.join(sorted(set(found)))})"
  count = cpu_count()
  return f"{cpu_model()}, {count} CPU{'s' if count != 1 else ''}, {gpu_text}"
