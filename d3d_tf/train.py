r"""Trains an S3D-G stream (rgb, flow) or a D3D student (rgb distilled from a flow teacher).

Usage:
  python -m tfrecords_tools.make_synthetic --output_dir=runs/synthetic/data
  python -m d3d_tf.train --flagfile=configs/synthetic_flow.flags
  python -m d3d_tf.train --flagfile=configs/synthetic_d3d.flags

The model dir gets flags.txt (rerun with `--flagfile=<model_dir>/flags.txt`), label_map.txt,
environment.json, checkpoints/, logs/ (TensorBoard), student.keras, best/student.keras and
final_metrics.json. Relaunching the same command resumes from the last checkpoint; relaunching
a finished run leaves it as it was. Bad input ends with one line, `train: error: ...`, naming
the flag and the fix, and exit code 2; TensorFlow's own logging is hidden unless --tf_log.

The flags are `TrainConfig`'s fields (d3d_tf/train_config.py), defined here from their
metadata. Unlike `train_lib.train` called from Python, this CLI sets process-wide state: the
pooled host allocator, global seeds and, with --deterministic, TensorFlow's op determinism.
"""


from absl import flags

from d3d_tf import cli
from d3d_tf import train_config


def _define_flags():
  """One absl flag per `TrainConfig` field, with its help, default, enum and bounds."""
  for field in train_config.flag_fields():
    rules, kind = field.metadata, train_config.kind(field)
    default = None if field.default is train_config.REQUIRED else field.default
    args = (field.name, default, rules["help"])
    bounds = dict(lower_bound=rules.get("lower"), upper_bound=rules.get("upper"))
    if "enum" in rules:
      flags.DEFINE_enum(field.name, default, list(rules["enum"]), rules["help"])
    elif kind is bool:
      flags.DEFINE_boolean(*args)
    elif kind is int:
      flags.DEFINE_integer(*args, **bounds)
    elif kind is float:
      flags.DEFINE_float(*args, **bounds)
    elif kind is tuple:
      flags.DEFINE_list(field.name, list(default), rules["help"])
    else:
      flags.DEFINE_string(*args)
    if field.default is train_config.REQUIRED:
      flags.mark_flag_as_required(field.name)


_define_flags()


def config_from_flags() -> train_config.TrainConfig:
  """A `TrainConfig` from the parsed flags (not yet validated)."""
  return train_config.from_flag_values(
      {field.name: flags.FLAGS[field.name].value for field in train_config.flag_fields()})


def _error(message) -> None:
  cli.fail("train", message)


def parse_flags(argv):
  """The shared CLI parsing (`d3d_tf.cli`), then `TrainConfig`'s checks: all before TF."""
  argv = cli.flags_parser("train")(argv)
  try:
    train_config.validate(config_from_flags())
  except ValueError as e:
    _error(e)
  return argv


def main(argv):
  cli.no_arguments(argv, "train")
  config = config_from_flags()
  if train_config.finished_run(config) is not None:
    return  # Said so; nothing to import TensorFlow for.
  # Before importing TensorFlow, which defines flags of its own that a rerun would reject.
  flags_text = flags.FLAGS.flags_into_string()
  cli.quiet_tensorflow()
  from d3d_tf.data import host_memory  # pylint: disable=g-import-not-at-top
  host_memory.request_pooled_allocator()  # Before TensorFlow's first op.
  from d3d_tf import train_lib  # pylint: disable=g-import-not-at-top
  from d3d_tf.training import final_metrics  # pylint: disable=g-import-not-at-top
  try:
    metrics = train_lib.train(config, flags_text, process_wide=True)
  except (ValueError, FileNotFoundError) as e:
    _error(e)
  print(final_metrics.table(metrics, config.stream))


def run():
  """Console-script entry point."""
  from absl import app  # pylint: disable=g-import-not-at-top
  app.run(main, flags_parser=parse_flags)


if __name__ == "__main__":
  run()
