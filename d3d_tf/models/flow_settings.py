"""The optical flow a flow model was trained on: method, bound and quantisation.

A flow network learns the statistics of one flow method: TV-L1, DIS and Farneback flows of the
same video differ in smoothness and magnitude, so a teacher trained on DIS flow and fed TV-L1
records returns wrong logits without a word. The same holds for another bound (the model sees
pixels / bound) or another quantisation. So a flow model stores the settings of the records it
was trained on in its `ClipGeometry`, and every consumer that feeds it records (train
`--teacher`, evaluate, probe) compares them with the records' (`records_settings`), refusing a
mismatch in one line that names both. No TensorFlow at import: `clip_geometry` imports this.
"""

import dataclasses
from typing import Optional

# The D3D release's flow models (and kinetics-i3d's): TV-L1, clipped to 20 px; its
# quantisation is not part of the release.
RELEASE_ALGORITHM = "tvl1"
RELEASE_BOUND = 20.0


@dataclasses.dataclass(frozen=True)
class FlowSettings:
  """How flow was computed and stored.

  Attributes:
    algorithm: The flow method (`d3d_tf.video.optical_flow.ALGORITHMS`: tvl1, dis, farneback),
      or None when unknown (a model saved before d3d_tf stored it).
    bound: Clip bound in pixels; the model sees flow / bound.
    quantization: How the records store it: "png" (uint8, lossless planes) or "jpeg" (uint8,
      lossy planes), the converter's --flow_format; None when unknown or not quantised.
  """
  algorithm: Optional[str]
  bound: float
  quantization: Optional[str] = None

  def describe(self) -> str:
    """`tvl1 flow, bound 20 px, png` for messages."""
    text = f"{self.algorithm or 'flow of an unrecorded method'}"
    text += " flow" if self.algorithm else ""
    text += f", bound {self.bound:g} px"
    return text + (f", {self.quantization}" if self.quantization else "")

  def differences(self, other: "FlowSettings"):
    """Names of the settings that differ; an unknown value (None) matches anything."""
    names = []
    for name in ("algorithm", "quantization"):
      mine, theirs = getattr(self, name), getattr(other, name)
      if mine is not None and theirs is not None and mine != theirs:
        names.append(name)
    if abs(float(self.bound) - float(other.bound)) > 1e-6:
      names.append("bound")
    return names


RELEASE = FlowSettings(RELEASE_ALGORITHM, RELEASE_BOUND)


def check(model: Optional[FlowSettings], data: FlowSettings, model_name: str,
          data_name: str) -> Optional[str]:
  """Refuses flow records other than the model's; returns a note when the model stores none.

  Args:
    model: What the flow model stores, or None (an older model).
    data: What the records hold (`records_settings`).
    model_name: e.g. "teacher runs/flow", for messages.
    data_name: e.g. "--train_files", for messages.

  Raises:
    ValueError: another method, bound or quantisation; one line naming both settings.
  """
  if model is None:
    return (f"{model_name} does not record the flow it was trained on (a model saved before "
            f"d3d_tf stored it): accepted; it must have been {data.describe()}, as "
            f"{data_name} hold.")
  differ = model.differences(data)
  if differ:
    fix = [f"--flow={model.algorithm}" if "algorithm" in differ else "",
           f"--flow_bound={model.bound:g}" if "bound" in differ else "",
           f"--flow_format={model.quantization}" if "quantization" in differ else ""]
    raise ValueError(
        f"{model_name} was trained on {model.describe()}, but {data_name} hold "
        f"{data.describe()} ({' and '.join(differ)} differ): convert them with "
        f"{' '.join(f for f in fix if f)} (tfrecords_tools.build_tfrecords).")
  if model.algorithm is None:
    return (f"{model_name} records its flow bound but not its flow method: accepted; it must "
            f"have been {data.describe()}, as {data_name} hold.")
  return None


def records_settings(flag: str, pattern: str) -> FlowSettings:
  """The flow settings of the records of `pattern`, from the first record of every shard.

  Raises:
    ValueError: records without flow, or shards with different settings (`flag` names them).
    FileNotFoundError: nothing matches.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top  (this module is TF-free)
  from d3d_tf.data import records  # pylint: disable=g-import-not-at-top
  bound = records.flow_bound_of(flag, pattern)  # Also refuses records without flow.
  keys = (records.FLOW_ALGORITHM, records.FLOW_FORMAT)
  spec = {key: records.CONTEXT_SPEC[key] for key in keys}
  found = set()
  for path in records.glob_files(pattern):
    for serialized in tf.data.TFRecordDataset(path).take(1):
      context, _ = tf.io.parse_single_sequence_example(serialized, context_features=spec)
      found.add(tuple(context[key].numpy().decode("utf-8") for key in keys))
  if len(found) > 1:
    raise ValueError(f"--{flag}={pattern!r}: records hold flow of different methods or "
                     f"formats {sorted(found)}; one is needed (re-convert).")
  algorithm, quantization = found.pop()
  return FlowSettings(algorithm, bound, quantization or None)
