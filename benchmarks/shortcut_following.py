r"""Does a model follow the appearance shortcut? Reads its test predictions.

On the appearance-shortcut variant (`make_synthetic --appearance_shortcut=P`) most val and test
actors wear the palette of a class drawn independently of their own. A model that learned the
shortcut predicts the palette's class; one that learned the motion predicts the clip's. For
each predictions.csv of `d3d_tf.evaluate` (one model alone), the test clips are grouped by what
the actor wears (computed from the clip's identity, no rendering) and the accuracy and the rate
of predicting the palette's class are printed, one JSON line per file.

  python -m d3d_tf.evaluate --models=runs/shortcut/seed_1/rgb/student.keras --num_clips=2 \
    --eval_files='runs/shortcut/data/records/test-*.tfrecord' \
    --output_dir=runs/shortcut/seed_1/eval/rgb_alone
  python benchmarks/shortcut_following.py runs/shortcut/seed_1/eval/rgb_alone/predictions.csv

The data settings default to configs/synthetic_shortcut_data.flags'.
"""

import argparse
import csv
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from tfrecords_tools import synthetic  # pylint: disable=g-import-not-at-top,wrong-import-position

GROUPS = ("palette of another class", "palette of its own class", "random colours")


def rates(path: str, seed: int, shortcut: float, split: str, actor_scale: float,
          speed: float, clutter: bool) -> dict:
  """Group -> clips, accuracy and rate of predicting the palette's class (0 for no palette)."""
  counts = {g: [0, 0, 0] for g in GROUPS}
  with open(path, encoding="utf-8") as f:
    for row in csv.DictReader(f):
      name, index = row["video_id"].split("/")[-1].rsplit("_", 1)
      spec = synthetic.ClipSpec(seed, split, synthetic.CLASSES.index(name), int(index),
                                clutter=clutter, actor_scale=actor_scale, speed=speed,
                                appearance_shortcut=shortcut)
      palette = synthetic.actor_palette(spec)
      group = (GROUPS[2] if palette is None else
               GROUPS[1] if palette == spec.class_index else GROUPS[0])
      counts[group][0] += 1
      counts[group][1] += row["prediction"] == name
      counts[group][2] += palette is not None and row["prediction"] == synthetic.CLASSES[palette]
  return {g: dict(clips=n, accuracy=c / n if n else None, follows_palette=p / n if n else None)
          for g, (n, c, p) in counts.items()}


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("predictions", nargs="+", help="predictions.csv of d3d_tf.evaluate")
  parser.add_argument("--seed", type=int, default=0, help="make_synthetic --seed")
  parser.add_argument("--appearance_shortcut", type=float, default=0.8)
  parser.add_argument("--split", default="test", choices=("val", "test"))
  parser.add_argument("--actor_scale", type=float, default=2.0)
  parser.add_argument("--speed", type=float, default=2.0)
  parser.add_argument("--clutter", action="store_true", help="data made without --noclutter")
  args = parser.parse_args()
  if not 0 < args.appearance_shortcut <= 1:
    parser.error("--appearance_shortcut must be in (0, 1]: the data's own value")
  for path in args.predictions:
    print(json.dumps(dict(predictions=path, **rates(
        path, args.seed, args.appearance_shortcut, args.split, args.actor_scale, args.speed,
        args.clutter))))


if __name__ == "__main__":
  main()
