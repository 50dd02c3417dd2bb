"""Training curves read back from a model dir's TensorBoard event files.

The trainer writes `logs/train` (per-checkpoint-interval `batch_*` scalars) and
`logs/validation` (`video_top1`, `video_top5`); reading them back means the report plots
exactly what TensorBoard shows, with no second log format to keep in step.
"""

import os
from typing import Dict, List, Tuple

import numpy as np


def read_scalars(log_dir: str) -> Dict[str, List[Tuple[int, float]]]:
  """tag -> [(step, value)] of every scalar summary under `log_dir` (empty if none)."""
  from tensorboard.backend.event_processing import event_accumulator  # pylint: disable=g-import-not-at-top
  if not os.path.isdir(log_dir):
    return {}
  accumulator = event_accumulator.EventAccumulator(
      log_dir, size_guidance={event_accumulator.TENSORS: 0, event_accumulator.SCALARS: 0})
  accumulator.Reload()
  curves = {}
  for tag in accumulator.Tags()["tensors"]:
    events = accumulator.Tensors(tag)
    values = []
    for event in events:
      array = np.frombuffer(event.tensor_proto.tensor_content,
                            np.float32) if event.tensor_proto.tensor_content else None
      if array is None or array.size != 1:
        if event.tensor_proto.float_val:
          array = np.array(event.tensor_proto.float_val[:1], np.float32)
        elif event.tensor_proto.double_val:
          array = np.array(event.tensor_proto.double_val[:1], np.float32)
        else:
          break  # Not a scalar (an image or a histogram).
      values.append((int(event.step), float(array[0])))
    if values and len(values) == len(events):
      curves[tag] = sorted(values)
  return curves


def model_curves(model_dir: str) -> Dict[str, List[Tuple[int, float]]]:
  """`train/<tag>` and `validation/<tag>` curves of one training run."""
  curves = {}
  for split in ("train", "validation"):
    for tag, values in read_scalars(os.path.join(model_dir, "logs", split)).items():
      curves[f"{split}/{tag}"] = values
  return curves
