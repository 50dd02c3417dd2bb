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

import os

from absl import flags

from d3d_tf.common import cli

_SOURCE = flags.DEFINE_enum(
    "source", None, ["slim", "torchvision"],
    "slim: a TF1 TF-Slim checkpoint prefix (the D3D release); torchvision: a state_dict file of "
    "torchvision.models.video.s3d (needs pip install -e .[torch]).")
_CHECKPOINT = flags.DEFINE_string(
    "checkpoint", None, "slim: checkpoint prefix (model.ckpt for model.ckpt.index) or its "
    "directory; torchvision: the .pth file.")
_OUTPUT = flags.DEFINE_string("output", None, "The .keras file to write.")
_USE_EMA = flags.DEFINE_boolean(
    "use_ema", False, "slim: load the ExponentialMovingAverage shadows instead of the raw "
    "weights (a plain restore into s3dg.py, as the release's notebook does, uses the raw ones).")
_LABEL_MAP = flags.DEFINE_string(
    "label_map", "", "Label map to write beside the output; default: Kinetics-400's for "
    "400-class checkpoints, none otherwise.")

flags.mark_flags_as_required(["source", "checkpoint", "output"])
flags.register_validator("output", lambda v: v.endswith(".keras"),
                         message="--output must end with .keras.")
flags.register_multi_flags_validator(
    ["source", "use_ema"], lambda f: f["source"] == "slim" or not f["use_ema"],
    message="--use_ema applies to --source=slim only.")

# How each source's models were evaluated: princeton-vl/d3dhelper's notebook (64 frames, short
# side 224, centre crop 224) and torchvision's S3D_Weights (clip_len 128, resize 256, crop 224).
SOURCE_GEOMETRY = {
    "slim": dict(num_frames=64, crop_size=224, crop_fraction=1.0),
    "torchvision": dict(num_frames=128, crop_size=224, crop_fraction=0.875),
}
KINETICS400_LABEL_MAP = os.path.join(os.path.dirname(__file__), "weights", "label_maps",
                                     "kinetics400.txt")


def convert(source, checkpoint, output, use_ema=False, label_map=""):
  """Converts and saves; returns (classifier, info). Raises WeightsError or FileNotFoundError."""
  from d3d_tf import weights  # pylint: disable=g-import-not-at-top  (TensorFlow: after flags)
  from d3d_tf.data.label_map import read_label_map, write_label_map  # pylint: disable=g-import-not-at-top
  from d3d_tf.models import ClipGeometry, flow_settings  # pylint: disable=g-import-not-at-top
  checkpoint = os.path.expanduser(checkpoint)
  if source == "slim":
    model, info = weights.load_slim_classifier(checkpoint, use_ema=use_ema)
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
    write_label_map(os.path.join(os.path.dirname(os.path.abspath(output)), "label_map.txt"),
                    names)
  info["label_map"] = label_map
  return model, info


def main(argv):
  cli.no_arguments(argv, "convert_weights")
  cli.quiet_tensorflow()
  from d3d_tf.weights import WeightsError  # pylint: disable=g-import-not-at-top
  try:
    model, info = convert(_SOURCE.value, _CHECKPOINT.value, _OUTPUT.value, _USE_EMA.value,
                          _LABEL_MAP.value)
  except (WeightsError, FileNotFoundError, ValueError) as e:
    cli.fail("convert_weights", e)
  arch = ", ".join(f"{k}={v}" for k, v in info["architecture"].items())
  print(f"Read {info['tensors']} tensors from {_CHECKPOINT.value}: {arch}, "
        f"{info['num_classes']} classes, {model.count_params():,} parameters.")
  if info.get("ema_available") and not info.get("used_ema"):
    print("The checkpoint also holds ExponentialMovingAverage shadows; --use_ema loads those.")
  label_note = f"; label map {info['label_map']}" if info["label_map"] else ""
  print(f"Wrote {_OUTPUT.value}{label_note}; clips: {model.clip_geometry.describe()}.")


def run():
  """Console-script entry point."""
  cli.run(main, "convert_weights")


if __name__ == "__main__":
  run()
