"""`SyntheticConfig`: every flag of `tfrecords_tools.make_synthetic`, declared once.

No TensorFlow (nor video codecs) here: `--help` and a bad flag answer at once.
"""

import dataclasses
import os

from d3d_tf.common import config_lib
from d3d_tf.common import defaults
from tfrecords_tools import shard_plan
from tfrecords_tools.build_config import FLOW_CHOICES, require_flags

_flag = config_lib.flag


@dataclasses.dataclass
class SyntheticConfig(config_lib.CommandConfig):
  """One synthetic dataset; each field is the `make_synthetic` flag of the same name."""
  output_dir: str = _flag("data/synthetic", "Writes videos/ (folder layout) and records/ here.")
  seed: int = _flag(0, "Seed of every random choice; same seed, same data.")
  train_per_class: int = _flag(30, "Training clips per class.")
  val_per_class: int = _flag(
      10, "Validation clips per class (watched during training, for tuning).")
  test_per_class: int = _flag(
      0, "Test clips per class, for the final table only (never for tuning).")
  unlabelled_per_class: int = _flag(
      0, "Extra training clips per class in a split of their own, unlabelled (records keep the "
      "true label, for the flow teacher; the D3D student reads them through d3d_tf.train "
      "--unlabelled_train_files, which hides it). configs/synthetic_unlabelled_data.flags uses "
      "20. 0 writes no such split.")
  size: int = _flag(64, "Frame height and width in pixels.")
  min_length: int = _flag(16, "Fewest frames in a clip.")
  max_length: int = _flag(24, "Most frames in a clip.")
  clutter: bool = _flag(
      True, "Distractors, camera shake, sensor noise and a grainy background; --noclutter "
      "leaves one textured actor on a smooth background.")
  actor_scale: float = _flag(
      1.0, "Multiplies the actor's radius (12-16 px at 64 px): a larger actor puts more of the "
      "frame in motion. configs/synthetic_data.flags uses 2.")
  speed: float = _flag(
      1.0, "Multiplies every class's rate of motion (pixels, degrees or scale per frame). "
      "configs/synthetic_data.flags uses 2, so that an RGB network can learn some of the "
      "motion.")
  appearance_shortcut: float = _flag(
      0.0, "Probability P that the actor wears a class palette (two fixed colours per class): "
      "in the train split its own class's, in val and test a class drawn independently of its "
      "own, so appearance predicts the class in training only (configs/"
      "synthetic_shortcut_data.flags uses 0.8). 0 renders the usual clips, byte for byte.")
  fps: int = _flag(25, "Frame rate written into the mp4 files.")
  workers: int = _flag(os.cpu_count() or 1, "Processes rendering clips and converting them.")
  convert: bool = _flag(True, "Also convert the clips to TFRecords in <output_dir>/records.")
  flow: str = _flag("dis", "Flow stored in the records; dis is fast, tvl1 is the paper's but "
                    "~100x slower.", enum=FLOW_CHOICES)
  flow_timing: bool = _flag(
      False, "Store each clip's measured flow seconds in its record (flow/seconds). Off by "
      "default: measured times differ run to run, so records would not be byte-identical; "
      f"{defaults.SUMMARY_FILE} has the run's flow seconds either way.")
  num_shards: int = _flag(
      0, f"Shards per split; 0 picks about {shard_plan.VIDEOS_PER_SHARD} clips a shard.")

  def check(self):
    """Each flag's range; messages say what to pass instead."""
    def check(name, ok, message):
      require_flags(self, [name], ok, message)
    check("train_per_class", self.train_per_class >= 1, "must be at least 1")
    for name in ("val_per_class", "test_per_class", "unlabelled_per_class"):
      check(name, getattr(self, name) >= 0, "must be 0 or more")
    check("size", self.size >= 32 and self.size % 2 == 0, "must be an even number >= 32, e.g. 64")
    check("min_length", self.min_length >= 2, "must be at least 2")
    require_flags(self, ["min_length", "max_length"], self.max_length >= self.min_length,
                  "--max_length must be >= --min_length")
    check("actor_scale", 0.25 <= self.actor_scale <= 4, "must be in [0.25, 4], e.g. 1 or 2")
    check("speed", 0 < self.speed <= 8, "must be in (0, 8], e.g. 1 or 2")
    check("appearance_shortcut", 0 <= self.appearance_shortcut <= 1,
          "must be a probability in [0, 1], e.g. 0 (off) or 0.8")
    check("fps", self.fps >= 1, "must be at least 1, e.g. 25")
    check("workers", self.workers >= 1, "must be at least 1")
    check("num_shards", self.num_shards >= 0, "must be 0 (auto) or more")

  def clips_per_class(self):
    """split -> clips per class, for the splits that get any (train always)."""
    counts = {"train": self.train_per_class, "val": self.val_per_class,
              "test": self.test_per_class, "unlabelled": self.unlabelled_per_class}
    return {split: n for split, n in counts.items() if split == "train" or n}
