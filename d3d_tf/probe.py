r"""Probes frozen networks for motion: can a linear decoder read optical flow from their features?

D3D's first question (Stroud et al. 2020, Sec. 3): does an RGB network's representation miss
the motion a flow network captures? For each model and endpoint a linear decoder is trained on
the frozen features to regress the clip's optical flow; the held-out end-point error (EPE,
pixels) is reported next to predicting zero flow and predicting the training mean flow. Every
endpoint is scored on one grid (flow averaged over 2 frames x 4x4 pixels by default) so the
numbers compare across endpoints; a random-init network is the control.

Usage:
  python -m d3d_tf.probe --model=runs/synthetic/rgb,runs/synthetic/d3d,runs/synthetic/flow \
    --random_init --train_files='runs/synthetic/data/records/train-*.tfrecord' \
    --eval_files='runs/synthetic/data/records/val-*.tfrecord' \
    --output_dir=runs/synthetic/probe

Writes probe.json ({model: {endpoint: {epe, zero_epe, mean_epe, train_epe}}, plus "_meta"),
probe_epe.png (bars), probe_flow.png (predicted vs true flow), flags.txt and checkpoints/;
relaunching the same command resumes (other settings stop it, naming them, unless
--overwrite). Bad input ends with one line naming the problem and exit code 2. The flags are `ProbeConfig`'s fields (d3d_tf/probing/probe_config.py).
"""

from absl import flags

from d3d_tf.common import cli
from d3d_tf.probing import probe_config
from d3d_tf.probing.probe_config import ProbeConfig

cli.define(ProbeConfig)


def main(argv):
  cli.no_arguments(argv, "probe")
  config = cli.config(ProbeConfig)
  cli.prepare_run_dir("probe", lambda: probe_config.prepare_output_dir(config))
  flags_text = flags.FLAGS.flags_into_string()  # Before TensorFlow adds flags of its own.
  from d3d_tf.data import host_memory  # pylint: disable=g-import-not-at-top
  host_memory.request_pooled_allocator()  # Before the first TensorFlow op.
  cli.quiet_tensorflow()
  from d3d_tf.probing import probe_lib  # pylint: disable=g-import-not-at-top
  try:
    probe_lib.run_probe(config, flags_text, check_output_dir=False)
  except (ValueError, FileNotFoundError) as e:
    cli.fail("probe", e)


def run():
  """Console-script entry point."""
  cli.run(main, "probe", ProbeConfig)


if __name__ == "__main__":
  run()
