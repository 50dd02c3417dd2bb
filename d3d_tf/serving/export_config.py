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


@dataclasses.dataclass
class ExportConfig(config_lib.CommandConfig):
  """One export; each field is the `d3d_tf.export` flag of the same name.

  The geometry fields left None come from the model's stored clip geometry.
  """
  model: str = _flag(REQUIRED, "Trained classifier, a .keras file.")
  export_base: str = _flag(REQUIRED, "Model repository root.")
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
  quantize: str = _flag("none", "float16: store weights in half precision (compute in "
                        "float32).", enum=("none", "float16"))
  overwrite: bool = _flag(False, "Replace an existing version directory.")
  # Not a flag: (height, width) of the warm-up requests' frames; None: (128, 171).
  warmup_size: Optional[Tuple[int, int]] = _flag(None, "Warm-up frame size.", flag=False)
