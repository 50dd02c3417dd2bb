r"""Trains an S3D-G stream (rgb, flow) or a D3D student (rgb distilled from a flow teacher).

Usage:
  python -m tfrecords_tools.make_synthetic --output_dir=runs/synthetic/data
  python -m d3d_tf.train --flagfile=configs/synthetic_flow.flags
  python -m d3d_tf.train --flagfile=configs/synthetic_d3d.flags

The model dir gets flags.txt (rerun with `--flagfile=<model_dir>/flags.txt`), label_map.txt,
environment.json, checkpoints/, logs/ (TensorBoard), student.keras, best/student.keras and
final_metrics.json. Relaunching the same command resumes from the last checkpoint; relaunching
a finished run leaves it as it was. A relaunch whose settings differ from the kept flags.txt
stops, naming them (then:/now:), unless they only change logging or checkpointing or raise
--train_steps; --overwrite starts the model dir afresh. Bad input ends with one line, `train: error: ...`, naming
the flag and the fix, and exit code 2; TensorFlow's own logging is hidden unless --tf_log.

The flags are `TrainConfig`'s fields (d3d_tf/training/train_config.py). Unlike
`train_lib.train` called from Python, this CLI sets process-wide state: the pooled host
allocator, global seeds and, with --deterministic, TensorFlow's op determinism.
"""

from absl import flags

from d3d_tf.common import cli
from d3d_tf.training import train_config


cli.define(train_config.TrainConfig)


def config_from_flags() -> train_config.TrainConfig:
  """A `TrainConfig` from the parsed flags (not yet validated)."""
  return cli.config(train_config.TrainConfig)


def _error(message) -> None:
  cli.fail("train", message)


def main(argv):
  cli.no_arguments(argv, "train")
  config = config_from_flags()
  cli.prepare_run_dir("train", lambda: train_config.prepare_model_dir(config))
  if train_config.finished_run(config) is not None:
    return  # Said so; nothing to import TensorFlow for.
  # Before importing TensorFlow, which defines flags of its own that a rerun would reject.
  flags_text = flags.FLAGS.flags_into_string()
  cli.quiet_tensorflow()
  from d3d_tf.data import host_memory  # pylint: disable=g-import-not-at-top
  host_memory.request_pooled_allocator()  # Before TensorFlow's first op.
  from d3d_tf.training import train_lib  # pylint: disable=g-import-not-at-top
  from d3d_tf.training import final_metrics  # pylint: disable=g-import-not-at-top
  try:
    metrics = train_lib.train(config, flags_text, process_wide=True, check_model_dir=False)
  except (ValueError, FileNotFoundError) as e:
    _error(e)
  print(final_metrics.table(metrics, config.stream))


def run():
  """Console-script entry point."""
  cli.run(main, "train", train_config.TrainConfig)


if __name__ == "__main__":
  run()
