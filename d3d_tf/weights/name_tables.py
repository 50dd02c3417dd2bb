"""The name tables: which tensor of a TF-Slim checkpoint or torchvision state_dict fills which
Keras variable of an `S3DGClassifier`.

One row per conv unit, one per weight kind inside a unit. TF-Slim names are `s3dg.py`'s
variable scopes under `InceptionV1/`; torchvision's are the `state_dict` keys of
`torchvision.models.video.s3d`. A table lists only what the model has (a cut backbone, no
gating, no temporal convs), so a source tensor it does not name is an unused tensor.
"""

import numpy as np

SLIM_SCOPE = "InceptionV1"

# Conv units outside the Inception blocks: Keras layer, TF-Slim scope, torchvision prefix.
STEM_UNITS = (
    ("Conv2d_1a_7x7", "Conv2d_1a_7x7", "features.0"),
    ("Conv2d_2b_1x1", "Conv2d_2b_1x1", "features.2"),
    ("Conv2d_2c_3x3", "Conv2d_2c_3x3", "features.3"),
)
# Inception blocks: Keras layer, torchvision module in `features`.
BLOCKS = (
    ("Mixed_3b", "features.5"), ("Mixed_3c", "features.6"), ("Mixed_4b", "features.8"),
    ("Mixed_4c", "features.9"), ("Mixed_4d", "features.10"), ("Mixed_4e", "features.11"),
    ("Mixed_4f", "features.12"), ("Mixed_5b", "features.14"), ("Mixed_5c", "features.15"),
)
# Units of one block: Keras attribute, TF-Slim sub-scope, torchvision sub-module.
BRANCH_UNITS = (
    ("branch_0_0a", "Branch_0/Conv2d_0a_1x1", "branch0"),
    ("branch_1_0a", "Branch_1/Conv2d_0a_1x1", "branch1.0"),
    ("branch_1_0b", "Branch_1/Conv2d_0b_3x3", "branch1.1"),
    ("branch_2_0a", "Branch_2/Conv2d_0a_1x1", "branch2.0"),
    ("branch_2_0b", "Branch_2/Conv2d_0b_3x3", "branch2.1"),
    ("branch_3_0b", "Branch_3/Conv2d_0b_1x1", "branch3.1"),
)
HEAD_LAYER = "Logits_Conv2d_0c_1x1"
SLIM_HEAD = "Logits/Conv2d_0c_1x1"
TORCH_HEAD = "classifier.1"

# Inside one unit: Keras sub-layer and variable, TF-Slim suffix (None: slim has none).
SLIM_UNIT = (
    ("conv", "kernel", "weights"),
    ("bn", "gamma", "BatchNorm/gamma"),
    ("bn", "beta", "BatchNorm/beta"),
    ("bn", "moving_mean", "BatchNorm/moving_mean"),
    ("bn", "moving_variance", "BatchNorm/moving_variance"),
    ("conv_temporal", "kernel", "temporal/weights"),
    ("conv_temporal", "bias", "temporal/biases"),
    ("self_gating", "kernel", "self_gating/transformer_W/weights"),
)
# torchvision: a 1x1x1 unit is `Conv3dNormActivation` (.0 conv, .1 BN); a separable one is a
# `TemporalSeparableConv` of two of them (.0 spatial, .1 temporal).
_TORCH_BN = (("gamma", "weight"), ("beta", "bias"), ("moving_mean", "running_mean"),
             ("moving_variance", "running_var"))
TORCH_UNIT = (("conv", "kernel", "0.weight"),) + tuple(
    ("bn", k, f"1.{t}") for k, t in _TORCH_BN)
TORCH_SEPARABLE_UNIT = (
    (("conv", "kernel", "0.0.weight"),) + tuple(("bn", k, f"0.1.{t}") for k, t in _TORCH_BN)
    + (("conv_temporal", "kernel", "1.0.weight"),)
    + tuple(("bn_temporal", k, f"1.1.{t}") for k, t in _TORCH_BN))
# Training state that a state_dict carries and a Keras model does not.
TORCH_IGNORED_SUFFIXES = ("num_batches_tracked",)


def slim_kernel(array, variable):
  """TF-Slim stores kernels as Keras does ([t, h, w, in, out]); gates as a [1, 1, 1, C, C] conv."""
  return np.reshape(array, variable.shape) if len(variable.shape) == 2 else array


def torch_kernel(array, variable):
  """PyTorch conv kernels are [out, in, t, h, w]; Keras wants [t, h, w, in, out]."""
  return np.transpose(array, (2, 3, 4, 1, 0)) if array.ndim == 5 else array


def _units(backbone):
  """(Keras unit layer, TF-Slim scope, torchvision prefix) for every conv unit of the backbone."""
  built = {layer.name for layer in backbone.layers}
  for layer, scope, prefix in STEM_UNITS:
    if layer in built:
      yield backbone.get_layer(layer), scope, prefix
  for block, prefix in BLOCKS:
    if block in built:
      for attr, scope, sub in BRANCH_UNITS:
        yield getattr(backbone.get_layer(block), attr), f"{block}/{scope}", f"{prefix}.{sub}"


def _variable(unit, sublayer, name):
  layer = getattr(unit, sublayer, None)
  return None if layer is None else getattr(layer, name, None)


def slim_table(classifier, head=True):
  """[(TF-Slim name, Keras variable, transform)] for every variable of `classifier`."""
  rows = []
  for unit, scope, _ in _units(classifier.backbone):
    for sublayer, name, suffix in SLIM_UNIT:
      variable = _variable(unit, sublayer, name)
      if variable is not None:
        rows.append((f"{SLIM_SCOPE}/{scope}/{suffix}", variable, slim_kernel))
  if head:
    conv = classifier.get_layer(HEAD_LAYER)
    rows += [(f"{SLIM_SCOPE}/{SLIM_HEAD}/weights", conv.kernel, slim_kernel),
             (f"{SLIM_SCOPE}/{SLIM_HEAD}/biases", conv.bias, slim_kernel)]
  return rows


def torchvision_table(classifier, head=True):
  """[(state_dict key, Keras variable, transform)] for every variable of `classifier`."""
  rows = []
  for unit, _, prefix in _units(classifier.backbone):
    table = TORCH_SEPARABLE_UNIT if unit.conv_temporal is not None else TORCH_UNIT
    for sublayer, name, suffix in table:
      variable = _variable(unit, sublayer, name)
      if variable is None:
        raise ValueError(f"The model's {unit.name} has no {sublayer}/{name} where torchvision's "
                         f"S3D has {prefix}.{suffix}: build it with variant='torchvision'.")
      rows.append((f"{prefix}.{suffix}", variable, torch_kernel))
  if head:
    conv = classifier.get_layer(HEAD_LAYER)
    rows += [(f"{TORCH_HEAD}.weight", conv.kernel, torch_kernel),
             (f"{TORCH_HEAD}.bias", conv.bias, torch_kernel)]
  return rows

