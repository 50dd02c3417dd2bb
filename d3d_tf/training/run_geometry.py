"""The clip geometry a training run stores in its model: the run's clips, labels and, for a
flow model, the flow of its records (method, bound, quantisation)."""

from typing import Sequence

from d3d_tf.data import datasets
from d3d_tf.models import flow_settings
from d3d_tf.models.clip_geometry import ClipGeometry


def run_geometry(config, labels: Sequence[str], modality: str) -> ClipGeometry:
  """What `config` (a `TrainConfig`) feeds a model reading `modality`, as a `ClipGeometry`.

  The evaluation centre crop is the one the run's validation uses (`datasets.eval_dataset`'s).
  """
  geometry = ClipGeometry(num_frames=config.num_frames, stride=config.stride,
                          crop_size=config.crop_size, crop_fraction=datasets.EVAL_CROP_FRACTION,
                          modality=modality, labels=tuple(labels))
  if modality == "flow":
    geometry = geometry.with_flow_settings(
        flow_settings.records_settings("train_files", config.train_files))
  return geometry
