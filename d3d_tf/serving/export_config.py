"""`ExportConfig`: every flag of `d3d_tf.export`, declared once.

`d3d_tf.export` defines its flags from the fields and checks them while parsing;
`export_lib.export_from_files` takes the config. No TensorFlow here.
"""

import dataclasses
from typing import Optional, Tuple

from d3d_tf.common import config_lib
from d3d_tf.common import defaults

REQUIRED = config_lib.REQUIRED
_flag = config_lib.flag
FORMATS = ("saved_model", "onnx", "litert")
QUANTIZE_CHOICES = ("none", "float16", "dynamic_int8", "int8")


@dataclasses.dataclass
class ExportConfig(config_lib.CommandConfig):
  """One export; each field is the `d3d_tf.export` flag of the same name.

  The geometry fields left None come from the model's stored clip geometry.
  """
  model: str = _flag(REQUIRED, "Trained classifier, a .keras file.")
  format: str = _flag(
      "saved_model", "saved_model: a TF Serving SavedModel under --export_base (frames of any "
      "size, resized in the graph); onnx: one .onnx file (ONNX Runtime, TensorRT; pip install "
      "-e .[onnx]); litert: one .tflite file and its .tflite.json sidecar (phones, edge; pip "
      "install -e .[litert]). onnx and litert take uint8 clips already cropped to the model's "
      "size.", enum=FORMATS)
  export_base: Optional[str] = _flag(None, "--format=saved_model: the model repository root.")
  output: Optional[str] = _flag(None, "--format=onnx|litert: the file to write (.onnx, .tflite).")
  label_map: Optional[str] = _flag(
      None, "Label map; default: the class names the model stores, else "
      f"{defaults.LABEL_MAP_FILE} beside --model.")
  name: str = _flag("d3d", "Model name (directory and served name).")
  version: int = _flag(1, "Version directory (positive integer).", lower=1)
  crop_size: Optional[int] = _flag(
      None, "Model input side the graph resizes to; default: the model's.", lower=1)
  crop_fraction: Optional[float] = _flag(
      None, "Centre crop side / short side; default: the model's.", lower=0.01, upper=1.0)
  num_frames: Optional[int] = _flag(
      None, "Frames per clip clients should send (metadata, warm-up shape); default: the "
      "model's.", lower=1)
  top_k: int = _flag(5, "Top classes returned.", lower=1)
  quantize: str = _flag(
      "none", "float16: weights in half precision (saved_model, litert). litert also: "
      "dynamic_int8 (int8 weights, float activations) and int8 (weights and activations, "
      "calibrated on --representative_files).", enum=QUANTIZE_CHOICES)
  representative_files: Optional[str] = _flag(
      None, "--quantize=int8: glob of TFRecords whose clips calibrate the activations (a few "
      "hundred clips like those the model will see, e.g. the validation split).")
  overwrite: bool = _flag(False, "Replace an existing version directory.")
  serving_device: str = _flag(
      "gpu", "Which op set --format=saved_model holds: gpu (native 3D convs and pools, "
      "cuDNN's; they run on CPUs too) or cpu (every 3D op as 2D ops over frames, faster on "
      "CPUs where they were measured faster). docs/SERVING.md.", enum=("gpu", "cpu"))

  def check(self):
    if self.format == "saved_model":
      if not self.export_base:
        raise ValueError("--format=saved_model needs --export_base (the model repository "
                         "root); --output is for --format=onnx or litert.")
      if self.quantize not in ("none", "float16"):
        raise ValueError(f"--quantize={self.quantize} is for --format=litert; a SavedModel "
                         "takes none or float16.")
      return
    if self.crop_fraction is not None:
      raise ValueError(f"--crop_fraction applies to --format=saved_model, whose graph crops; a "
                       f"{self.format} file takes clips already cropped (predict crops them "
                       "with the model's fraction): leave --crop_fraction out.")
    suffix = ".onnx" if self.format == "onnx" else ".tflite"
    if not self.output or not self.output.endswith(suffix):
      raise ValueError(f"--format={self.format} needs --output=FILE{suffix}; got "
                       f"{self.output!r}.")
    if self.format == "onnx" and self.quantize != "none":
      raise ValueError("--quantize does not apply to --format=onnx (quantize with ONNX "
                       "Runtime's tools); leave it out.")
    if self.quantize == "int8" and not self.representative_files:
      raise ValueError("--quantize=int8 calibrates on clips: pass --representative_files "
                       "(records of clips like those the model will see).")

  # Not a flag: (height, width) of the warm-up requests' frames; None: (128, 171).
  warmup_size: Optional[Tuple[int, int]] = _flag(None, "Warm-up frame size.", flag=False)
