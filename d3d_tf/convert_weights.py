r"""Converts pretrained S3D-G / S3D weights into a d3d_tf `.keras` classifier.

Two sources: the D3D release's TF1 TF-Slim checkpoints (S3D-G RGB, flow and D3D, restored by
the release into `research/slim/nets/s3dg.py`), and torchvision's Kinetics-400 S3D. The
architecture is read from the checkpoint's shapes. The output loads in every d3d_tf tool
(train --teacher / --init_from, evaluate, export, predict, probe) and with
`keras.models.load_model` after `import d3d_tf`.

Usage:
  python -m d3d_tf.convert_weights --source=slim --checkpoint=d3d_rgb_k400/model.ckpt \
      --output=pretrained/d3d_rgb_k400.keras
  python -m d3d_tf.convert_weights --source=torchvision \
      --checkpoint=~/.cache/torch/hub/checkpoints/s3d-d76dad2f.pth --output=pretrained/s3d.keras

Writes FILE.keras and, when the class count is Kinetics-400's, label_map.txt beside it (the
400 classes in the order both sources use). The model stores the source's inference geometry
(`SOURCE_GEOMETRY`: the release's 64 frames, centre 224 crop of the 224 short side;
torchvision's 128-frame clips, 224 crop of 256) and the class names, which evaluate, export and
predict then use unless told otherwise. Bad input ends with one line naming the file and
what is wrong, exit code 2.
"""

import dataclasses
import os

from d3d_tf.common import cli
from d3d_tf.common import config_lib
from d3d_tf.common import defaults

_flag = config_lib.flag


@dataclasses.dataclass
class ConvertWeightsConfig(config_lib.CommandConfig):
  """One conversion; each field is the flag of the same name. Declared here, not in
  `d3d_tf.weights` (whose package imports TensorFlow), so `--help` stays fast."""
  source: str = _flag(
      config_lib.REQUIRED, "slim: a TF1 TF-Slim checkpoint prefix (the D3D release); "
      "torchvision: a state_dict file of torchvision.models.video.s3d (needs pip install -e "
      ".[torch]).", enum=("slim", "torchvision"))
  checkpoint: str = _flag(
      config_lib.REQUIRED, "slim: checkpoint prefix (model.ckpt for model.ckpt.index) or its "
      "directory; torchvision: the .pth file.")
  output: str = _flag(config_lib.REQUIRED, "The .keras file to write.")
  use_ema: bool = _flag(
      False, "slim: load the ExponentialMovingAverage shadows instead of the raw weights (a "
      "plain restore into s3dg.py, as the release's notebook does, uses the raw ones).")
  label_map: str = _flag(
      "", "Label map to write beside the output; default: Kinetics-400's for 400-class "
      "checkpoints, none otherwise.")

  def check(self):
    if not self.output.endswith(".keras"):
      raise ValueError("--output must end with .keras.")
    if self.use_ema and self.source != "slim":
      raise ValueError("--use_ema applies to --source=slim only.")


cli.define(ConvertWeightsConfig)

# How each source's models were evaluated: princeton-vl/d3dhelper's notebook (64 frames, short
# side 224, centre crop 224) and torchvision's S3D_Weights (clip_len 128, resize 256, crop 224).
SOURCE_GEOMETRY = {
    "slim": dict(num_frames=64, crop_size=224, crop_fraction=1.0),
    "torchvision": dict(num_frames=128, crop_size=224, crop_fraction=defaults.CROP_FRACTION),
}
KINETICS400_LABEL_MAP = os.path.join(os.path.dirname(__file__), "weights", "label_maps",
                                     "kinetics400.txt")


def convert(config: ConvertWeightsConfig):
  """Converts and saves; returns (classifier, info).

  Raises:
    WeightsError, FileNotFoundError: a bad checkpoint or label map; ValueError: bad flags.
  """
  config.validate()
  source, output, label_map = config.source, config.output, config.label_map
  from d3d_tf import weights  # pylint: disable=g-import-not-at-top  (TensorFlow: after flags)
  from d3d_tf.data.label_map import read_label_map, write_label_map  # pylint: disable=g-import-not-at-top
  from d3d_tf.models import ClipGeometry, flow_settings  # pylint: disable=g-import-not-at-top
  checkpoint = os.path.expanduser(config.checkpoint)
  if source == "slim":
    model, info = weights.load_slim_classifier(checkpoint, use_ema=config.use_ema)
  else:
    model, info = weights.load_torchvision_classifier(checkpoint)
  names = None
  if label_map:
    names = read_label_map(label_map)
  elif info["num_classes"] == 400:
    label_map, names = KINETICS400_LABEL_MAP, read_label_map(KINETICS400_LABEL_MAP)
  if names is not None and len(names) != info["num_classes"]:
    raise weights.WeightsError(f"--label_map={label_map!r} has {len(names)} classes but the "
                               f"checkpoint predicts {info['num_classes']}.")
  modality = "rgb" if model.input_shape[-1] == 3 else "flow"
  geometry = ClipGeometry(**SOURCE_GEOMETRY[source], modality=modality, labels=names)
  if modality == "flow":  # The release's flow models read TV-L1 flow clipped to 20 px.
    geometry = geometry.with_flow_settings(flow_settings.RELEASE)
  model.clip_geometry = geometry
  os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
  model.save(output)
  if names is not None:
    write_label_map(os.path.join(os.path.dirname(os.path.abspath(output)), defaults.LABEL_MAP_FILE),
                    names)
  info["label_map"] = label_map
  return model, info


def main(argv):
  cli.no_arguments(argv, "convert_weights")
  config = cli.config(ConvertWeightsConfig)
  cli.quiet_tensorflow()
  from d3d_tf.weights import WeightsError, recipes  # pylint: disable=g-import-not-at-top
  try:
    model, info = convert(config)
  except (WeightsError, FileNotFoundError, ValueError) as e:
    cli.fail("convert_weights", e)
  arch = ", ".join(f"{k}={v}" for k, v in info["architecture"].items())
  print(f"Read {info['tensors']} tensors from {config.checkpoint}: {arch}, "
        f"{info['num_classes']} classes, {model.count_params():,} parameters.")
  if info.get("ema_available") and not info.get("used_ema"):
    print("The checkpoint also holds ExponentialMovingAverage shadows; --use_ema loads those.")
  label_note = f"; label map {info['label_map']}" if info["label_map"] else ""
  print(f"Wrote {config.output}{label_note}; clips: {model.clip_geometry.describe()}.")
  print(recipes.format_recipe(config.source, config.output, flow=model.input_shape[-1] == 2))


def run():
  """Console-script entry point."""
  cli.run(main, "convert_weights", ConvertWeightsConfig)


if __name__ == "__main__":
  run()
