r"""Builds the synthetic motion benchmark: mp4 clips whose class is in the motion alone.

Ten classes (translation in four directions, rotation either way, expansion, contraction,
horizontal and vertical shaking) of a textured actor among distractors, over a random textured
background, with camera shake and noise; no single frame tells the class (tfrecords_tools/
synthetic.py explains how). The clips are real mp4 files in the folder layout, converted by the
real converter, so the benchmark exercises the same path as a real dataset.

Usage:

  python -m tfrecords_tools.make_synthetic --output_dir=data/synthetic
  python -m tfrecords_tools.make_synthetic --flagfile=configs/synthetic_data.flags  # quickstart's
  # -> data/synthetic/videos/{train,val,test}/<class>/<class>_NNNN.mp4
  #    data/synthetic/records/{train,val,test}-NNNNN-of-MMMMM.tfrecord, label_map.txt, ...
  # --unlabelled_per_class=N adds an unlabelled split (videos/unlabelled, unlabelled-*.tfrecord).

The same --seed and sizes always give the same clips (the same decoded pixels) and the same
records, byte for byte (unless --flow_timing stores measured seconds in them). The flags are
`SyntheticConfig`'s fields (tfrecords_tools/synthetic_config.py).
"""

from d3d_tf.common import cli
from tfrecords_tools.synthetic_config import SyntheticConfig

cli.define(SyntheticConfig)


def main(argv):
  if len(argv) > 1:
    cli.fail("make_synthetic", f"unexpected arguments {argv[1:]}; every input is a flag")
  config = cli.config(SyntheticConfig)
  cli.quiet_tensorflow()  # The shard writer's; its C++ notices would splice into the bar.
  # Video codecs and the converter: after the flags.
  from tfrecords_tools import synthetic  # pylint: disable=g-import-not-at-top
  return synthetic.make_dataset(config)


def run():
  """Console-script entry point."""
  cli.run(main, "make_synthetic", SyntheticConfig)


if __name__ == "__main__":
  run()
