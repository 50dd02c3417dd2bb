"""Reads torchvision's S3D weights (a `state_dict` file) into a torchvision-layout classifier.

PyTorch is imported here only, to read the file: `pip install -e .[torch]`. The file is what
`torch.save(model.state_dict(), path)` writes, or torchvision's download cache
(`~/.cache/torch/hub/checkpoints/s3d-d76dad2f.pth`); a dict holding it under `state_dict` or
`model` works too.
"""

import os


from d3d_tf.models import S3DGBackbone, S3DGClassifier
from d3d_tf.weights import name_tables
from d3d_tf.weights.assign import WeightsError, assign_from_table

_FIRST = "features.0.0.0.weight"


def read_state_dict(path):
  """{key: numpy array} of a PyTorch state_dict file; WeightsError names the file."""
  if not os.path.isfile(path):
    raise WeightsError(f"--checkpoint={path!r} does not exist.")
  try:
    import torch  # pylint: disable=g-import-not-at-top
  except ImportError:
    raise WeightsError("Reading torchvision weights needs PyTorch, which d3d_tf does not "
                       "install: pip install -e .[torch] (or pip install torch).") from None
  try:
    state = torch.load(path, map_location="cpu", weights_only=True)
  except Exception as e:  # pylint: disable=broad-except  torch raises many kinds.
    raise WeightsError(f"--checkpoint={path!r}: not a readable PyTorch file "
                       f"({type(e).__name__}: {str(e).splitlines()[0][:200]}).") from None
  for key in ("state_dict", "model"):
    if isinstance(state, dict) and isinstance(state.get(key), dict):
      state = state[key]
  if not isinstance(state, dict) or not all(hasattr(v, "shape") for v in state.values()):
    raise WeightsError(f"--checkpoint={path!r}: not a state_dict (a dict of tensors).")
  return {k.removeprefix("module."): v.detach().float().numpy() for k, v in state.items()}


def load_torchvision_classifier(path, dtype=None, name=None):
  """An `S3DGClassifier(variant="torchvision")` holding a torchvision S3D state_dict.

  Args:
    path: The state_dict file, or an already read `{key: numpy array}`.
    dtype, name: As `S3DGClassifier`.

  Returns:
    (classifier, info) with the class count and tensor count.

  Raises:
    WeightsError: Not torchvision's S3D, a missing, unused or misshapen tensor, no PyTorch.
  """
  state = path if isinstance(path, dict) else read_state_dict(path)
  path = "state_dict" if isinstance(path, dict) else path
  if _FIRST not in state or "classifier.1.weight" not in state:
    sample = ", ".join(sorted(state)[:3])
    raise WeightsError(f"--checkpoint={path!r}: no '{_FIRST}' or 'classifier.1.weight': not "
                       f"torchvision's S3D (its keys start {sample}).")
  first = state[_FIRST]
  if first.ndim != 5:
    raise WeightsError(f"--checkpoint={path!r}: '{_FIRST}' has shape {list(first.shape)}, not a "
                       "3D conv kernel: not torchvision's S3D.")
  num_classes = int(state["classifier.1.weight"].shape[0])
  backbone = S3DGBackbone(input_channels=int(first.shape[1]), variant="torchvision",
                          dtype=dtype)
  classifier = S3DGClassifier(backbone, num_classes, dtype=dtype, name=name or "s3d_rgb")
  names = {k for k in state if not k.endswith(name_tables.TORCH_IGNORED_SUFFIXES)}
  count = assign_from_table(name_tables.torchvision_table(classifier), state.__getitem__,
                            names, path)
  return classifier, {"tensors": count, "num_classes": num_classes, "architecture": {
      "variant": "torchvision", "input_channels": int(first.shape[1])}}


