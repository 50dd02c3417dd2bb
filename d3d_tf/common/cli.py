"""What every d3d_tf and tfrecords_tools command line shares, so they all behave alike.

- Flags are parsed before TensorFlow is imported: `--help` and a mistyped flag answer at once.
- `--help` exits 0; a bad flag or bad input prints ONE line, `<tool>: error: <what and fix>`,
  and exits 2 (absl's own flag errors print two lines and exit 1).
- TensorFlow is quiet by default: its C++ log (cuInit failures on every CPU machine, oneDNN
  notices, grappler warnings) and its Python INFO lines (checkpoint sharding) are hidden unless
  `--tf_log` (or absl's `--verbosity`) is given; a TF_CPP_MIN_LOG_LEVEL the caller set wins.

- A command's flags are its config dataclass's fields (`config_lib`): `define(Config)` at
  import, `config(Config)` in `main`; the config's `validate` runs while parsing, before TF.

Example (a command's module):

  cli.define(EvalConfig)

  def main(argv):
    cli.no_arguments(argv, "evaluate")
    config = cli.config(EvalConfig)
    cli.quiet_tensorflow()
    from d3d_tf.evaluation import evaluate_lib  # TensorFlow: after the flags.
    evaluate_lib.evaluate(config)

  def run():
    cli.run(main, "evaluate", EvalConfig)

Nothing happens on import; `quiet_tensorflow` changes the process (environment, log levels),
so only the CLIs' `main` calls it, never library code.
"""

import os
import sys
import tempfile
from typing import Callable, List, NoReturn, Optional, Sequence, Type, TypeVar

from absl import app
from absl import flags
from absl import logging

from d3d_tf.common import config_lib

_C = TypeVar("_C")

_TF_LOG = flags.DEFINE_boolean(
    "tf_log", False, "Show TensorFlow's own C++ and Python logging (hidden by default: on a CPU "
    "machine it is mostly CUDA-not-found and oneDNN notices).")

HELP_ARGS = ("--help", "-help", "--helpshort", "-helpshort", "--helpfull", "-helpfull", "-?",
             "--helpxml", "-helpxml")


def error(tool: str, message) -> None:
  """Prints `<tool>: error: <message>` as one line to stderr (a tool that goes on after it)."""
  print(f"{tool}: error: {' '.join(str(message).split())}", file=sys.stderr)


def fail(tool: str, message, status: int = 2) -> NoReturn:
  """`error`, then exit with `status`."""
  error(tool, message)
  sys.exit(status)


def flags_parser(tool: str, config_cls: Optional[Type] = None
                 ) -> Callable[[List[str]], List[str]]:
  """An `app.run` flags parser: help exits 0, every flag error is one line and exit 2; with
  `config_cls`, its config's `validate` runs too (before TensorFlow)."""

  def parse(argv: List[str]) -> List[str]:
    asked_help = any(a.split("=")[0] in HELP_ARGS for a in argv[1:])
    try:
      argv = flags.FLAGS(argv)
      if config_cls is not None:
        try:
          config(config_cls).validate()
        except ValueError as e:
          fail(tool, e)
      return argv
    except flags.Error as e:
      message = " ".join(str(e).split())
      if isinstance(e, flags.UnrecognizedFlagError):
        message += "; run with --helpshort to list the flags"
      fail(tool, message)
    except SystemExit:  # absl's help flags exit 1 after printing the help.
      if asked_help:
        sys.exit(0)
      raise

  return parse


def run(main: Callable[[List[str]], None], tool: str, config_cls: Optional[Type] = None
        ) -> None:
  """`absl.app.run(main)` with the shared flags parser (and `config_cls`'s checks)."""
  if config_cls is not None:  # Its own flags, whatever else was imported since.
    name = sys.argv[0] if main.__module__ == "__main__" else main.__module__
    config_lib.define_flags(config_cls, module_name=name)
  app.run(main, flags_parser=flags_parser(tool, config_cls))


def define(config_cls: Type) -> None:
  """Defines the command's flags from its config dataclass (once, at import), as flags of the
  calling module, so `--help` lists them."""
  caller = sys._getframe(1).f_globals.get("__name__")  # pylint: disable=protected-access
  if caller == "__main__":
    caller = sys.argv[0]  # As absl names a script's own flags.
  config_lib.define_flags(config_cls, module_name=caller)


def config(config_cls: Type[_C]) -> _C:
  """The command's config from the parsed flags."""
  return config_lib.from_flags(config_cls)


def prepare_run_dir(tool: str, prepare: Callable[[], List[str]]) -> None:
  """Runs a resumable command's run-directory check (`config_lib.prepare_run_dir`) and prints
  its lines; a relaunch with other settings exits 2 with its then:/now: lines, other bad input
  with one line."""
  try:
    for line in prepare():
      print(line, flush=True)
  except config_lib.ChangedSettings as e:
    print(f"{tool}: error: {e}", file=sys.stderr)
    sys.exit(2)
  except ValueError as e:
    fail(tool, e)


def no_arguments(argv: Sequence[str], tool: str) -> None:
  """Exits 2 on positional arguments (every tool takes flags only)."""
  if len(argv) > 1:
    fail(tool, f"unexpected arguments {list(argv[1:])}: every input is a --flag "
               "(--helpshort lists them)")


def _tf_log_requested() -> bool:
  return _TF_LOG.value or ("verbosity" in flags.FLAGS and flags.FLAGS["verbosity"].present)


def quiet_tensorflow() -> None:
  """Hides TensorFlow's logging (unless asked for) and imports it; call before any TF import.

  Some of TensorFlow's C++ lines are written before its logger reads TF_CPP_MIN_LOG_LEVEL, so
  stderr is parked in a temporary file while `tensorflow` is imported and shown only if the
  import fails.
  """
  if _tf_log_requested():
    import tensorflow  # pylint: disable=g-import-not-at-top,unused-import
    return
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
  logging.set_verbosity(logging.WARNING)
  if "tensorflow" not in sys.modules:
    _import_with_stderr_parked("tensorflow")
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  tf.get_logger().setLevel("ERROR")


def _import_with_stderr_parked(module: str) -> None:
  sys.stderr.flush()
  saved = os.dup(2)
  with tempfile.TemporaryFile() as parked:
    os.dup2(parked.fileno(), 2)
    try:
      __import__(module)
    except BaseException:
      os.dup2(saved, 2)
      parked.seek(0)
      sys.stderr.buffer.write(parked.read())
      raise
    finally:
      os.dup2(saved, 2)
      os.close(saved)
