"""The clip geometry a training run stores in its model: the run's clips, labels, flow bound."""

from typing import Optional, Sequence

from d3d_tf.data import datasets
from d3d_tf.data import records
from d3d_tf.models.clip_geometry import ClipGeometry


def run_geometry(config, labels: Sequence[str], modality: str) -> ClipGeometry:
  """What `config` (a `TrainConfig`) feeds a model reading `modality`, as a `ClipGeometry`.

  The evaluation centre crop is the one the run's validation uses (`datasets.eval_dataset`'s).
  """
  bound: Optional[float] = None
  if modality == "flow":
    bound = records.flow_bound_of("train_files", config.train_files)
  return ClipGeometry(num_frames=config.num_frames, stride=config.stride,
                      crop_size=config.crop_size, crop_fraction=datasets.EVAL_CROP_FRACTION,
                      modality=modality, flow_bound=bound, labels=tuple(labels))
