"""`ProbeConfig`: every flag of `d3d_tf.probe`, declared once, with its checks.

`d3d_tf.probe` defines its flags from the fields and checks them while parsing (before
TensorFlow is imported); `probe_lib.run_probe` takes the config and checks it again for Python
callers. No TensorFlow here.
"""

import dataclasses
from typing import Optional, Tuple

from d3d_tf.common import config_lib
from d3d_tf.common import defaults
from d3d_tf.training.train_config import ENDPOINTS

REQUIRED = config_lib.REQUIRED
_flag = config_lib.flag

# Clip geometry when neither the flags nor the first model's flags.txt give it.
CLIP_DEFAULTS = {"num_frames": 16, "stride": 1, "crop_size": 112,
                 "min_area": defaults.MIN_AREA}


@dataclasses.dataclass
class ProbeConfig(config_lib.CommandConfig):
  """One probe run; each field is the `d3d_tf.probe` flag of the same name (`models`: --model).

  `num_frames`, `stride` and `crop_size` left as None come from the clip geometry the first
  model stores, else (older models, and `min_area` always) its model dir's flags.txt, else
  `CLIP_DEFAULTS`.
  """
  train_files: str = _flag(REQUIRED, "Glob of TFRecords the probes fit on.")
  eval_files: str = _flag(REQUIRED, "Glob of held-out TFRecords scored.")
  output_dir: str = _flag(REQUIRED, "Where probe.json, PNGs, checkpoints go.")
  models: Tuple[str, ...] = _flag(
      (), "Models to probe: model dirs of d3d_tf.train (their student.keras) or .keras "
      "files, comma-separated; each reads rgb or flow by its input channels.", name="model")
  random_init: bool = _flag(
      False, "Also probe a random-init S3D-G (the control), built like the first --model (or "
      "with --depth_multiplier when there is none).")
  random_init_input: str = _flag("rgb", "Input of the random-init control.",
                                 enum=("rgb", "flow"))
  depth_multiplier: float = _flag(
      1.0, "Width of the random-init control when no --model is given.", lower=1e-3)
  endpoints: Tuple[str, ...] = _flag(
      (), "Endpoints to probe; default: those of Conv2d_2c_3x3, Mixed_3c, Mixed_4f, Mixed_5c "
      "that every model has (a model cut after Mixed_3c gets the first two).")
  steps: int = _flag(300, "Optimizer steps (all probes train together).", lower=1)
  checkpoint_every: int = _flag(100, "Steps between checkpoints.", lower=1)
  batch_size: int = _flag(8, "Clips per batch.", lower=1)
  learning_rate: float = _flag(0.01, "Adam peak rate (cosine decay).", lower=0)
  num_frames: Optional[int] = _flag(
      None, "Frames per clip (even); default: the first model's (stored in it, or its model "
      "dir's flags.txt), else 16.", lower=2)
  stride: Optional[int] = _flag(
      None, "Temporal stride; default as --num_frames, else 1.", lower=1)
  crop_size: Optional[int] = _flag(
      None, "Clip side (a multiple of --space_stride); default as --num_frames, else 112.",
      lower=8)
  min_area: Optional[float] = _flag(
      None, f"Smallest training crop (fraction of the frame); default as --num_frames, else "
      f"{defaults.MIN_AREA}.", lower=0.01, upper=1.0)
  space_stride: int = _flag(
      4, "Target grid cell in pixels (flow averaged over it); 4 is the grid of Conv2d_2c_3x3.",
      lower=1)
  statistics_batches: int = _flag(
      8, "Training batches that set each decoder's feature statistics.", lower=1)
  eval_clips: int = _flag(1, "Clips per held-out video (centre crop).", lower=1)
  num_panels: int = _flag(3, "Held-out clips drawn in probe_flow.png.", lower=0)
  seed: int = _flag(0, "Seed of the data order, the control and the probes.")
  overwrite: bool = _flag(
      False, "Start --output_dir afresh instead of refusing a relaunch whose settings differ "
      "from the ones it kept in flags.txt.")
  # Not a flag: how a Python caller wants Keras' progress printed (None: the run-wide bar).
  verbose: Optional[int] = _flag(None, "Keras fit verbosity.", flag=False)

  def check(self):
    def check(ok, message):
      if not ok:
        raise ValueError(message)
    check(self.models or self.random_init,
          "Nothing to probe: give --model (comma-separated model dirs or .keras files) and/or "
          "--random_init.")
    bad = [e for e in self.endpoints if e not in ENDPOINTS]
    check(not bad, f"--endpoints {bad} are not S3D-G endpoints; choose from {list(ENDPOINTS)}.")
    check(len(set(self.endpoints)) == len(self.endpoints),
          f"--endpoints lists an endpoint twice: {list(self.endpoints)}.")
    check(self.steps % self.checkpoint_every == 0,
          f"--steps ({self.steps}) must be a multiple of --checkpoint_every "
          f"({self.checkpoint_every}).")
    check(self.learning_rate > 0, f"--learning_rate must be > 0; got {self.learning_rate}.")


# Settings a relaunch may change without changing the probes (echoed), and those it may raise.
RELAUNCH_MAY_DIFFER = ("checkpoint_every", "num_panels", "overwrite")
RELAUNCH_MAY_GROW = ("steps",)


def prepare_output_dir(config: ProbeConfig):
  """--overwrite, or the relaunch check against the output dir's flags.txt; the lines to print.

  Raises:
    config_lib.ChangedSettings: the kept settings differ in one that matters.
    ValueError: --overwrite on a directory that is not a probe's output.
  """
  return config_lib.prepare_run_dir(
      config, config.output_dir, "d3d_tf.probe", config.overwrite,
      may_differ=RELAUNCH_MAY_DIFFER, may_grow=RELAUNCH_MAY_GROW, flags_file=defaults.FLAGS_FILE)
