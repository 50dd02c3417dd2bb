"""One declaration per command: a dataclass whose fields are its flags.

Each field of a command's config carries its help text and rules in its metadata (`flag()`);
from them come the absl flags (`define_flags`), the config read back from parsed flags
(`from_flags`), the type/choice/bound checks (`check_fields`) and the flagfile a run keeps
(`to_flagfile`). The library takes the dataclass, so a Python caller and the command line go
through the same rules. No TensorFlow here: `--help` and flag errors must answer at once.

Example:

  @dataclasses.dataclass
  class ExportConfig(config_lib.CommandConfig):
    model: str = config_lib.flag(config_lib.REQUIRED, "Trained classifier, a .keras file.")
    version: int = config_lib.flag(1, "Version directory.", lower=1)

    def check(self):  # Rules that tie flags together; raise ValueError naming the flag.
      ...

  config_lib.define_flags(ExportConfig)          # in the command module, at import
  cfg = config_lib.from_flags(ExportConfig)      # in main(), after parsing
"""

import dataclasses
import functools
import os
import shutil
import typing
from typing import Any, Dict, Iterable, List, Mapping, Tuple, Type, TypeVar

from d3d_tf.common import defaults
from d3d_tf.common import flagfiles

REQUIRED = dataclasses.MISSING

_C = TypeVar("_C", bound="CommandConfig")


def flag(default, help_text: str, **rules):
  """A config field that is a flag of the same name (or `name=`).

  Rules: `enum` (the allowed values), `lower`, `upper` (bounds, inclusive; items of a list
  each), `name` (the flag's name where the field's differs), `flag=False` (a Python-only field:
  no flag, not in the flagfile), `echo=True` (may differ on a relaunch of a resumable run: it
  does not change the result).
  """
  if isinstance(default, (list, dict, set)):
    raise TypeError("a flag's default must be immutable (use a tuple).")
  return dataclasses.field(default=default, metadata=dict(help=help_text, **rules))


class CommandConfig:
  """Base of the commands' config dataclasses: validation and the flagfile."""

  def check(self) -> None:
    """Rules that tie fields together; a subclass raises ValueError naming the flag."""

  def validate(self) -> None:
    """Every field's own rules, then `check`; raises ValueError naming the flag and the fix."""
    check_fields(self)
    self.check()

  def to_flagfile(self) -> str:
    """The config as flagfile lines (`--name=value`), read back by its command."""
    return flagfiles.to_flagfile(
        (flag_name(f), getattr(self, f.name)) for f in flag_fields(type(self)))

  def flag_values(self) -> Dict[str, Any]:
    """flag name -> value, for every flag (what a relaunch is compared on)."""
    return {flag_name(f): getattr(self, f.name) for f in flag_fields(type(self))}


def flag_fields(cls: Type) -> Tuple[dataclasses.Field, ...]:
  """The fields of `cls` that are flags, in declaration order."""
  return tuple(f for f in dataclasses.fields(cls) if f.metadata.get("flag", True))


def flag_name(field: dataclasses.Field) -> str:
  return field.metadata.get("name", field.name)


@functools.lru_cache(maxsize=None)
def _hints(cls: Type) -> Dict[str, Any]:
  return typing.get_type_hints(cls)


def _unwrap_optional(hint):
  if typing.get_origin(hint) is typing.Union:
    return next(a for a in typing.get_args(hint) if a is not type(None))
  return hint


def kind(cls: Type, field: dataclasses.Field) -> type:
  """The flag's value type: bool, int, float, str or tuple (a comma-separated list)."""
  hint = _unwrap_optional(_hints(cls)[field.name])
  return tuple if typing.get_origin(hint) is tuple else hint


def item_kind(cls: Type, field: dataclasses.Field) -> type:
  """For a list flag, the type of its items (int, float or str); else `kind`."""
  hint = _unwrap_optional(_hints(cls)[field.name])
  if typing.get_origin(hint) is tuple:
    return typing.get_args(hint)[0]
  return hint


def define_flags(cls: Type, flag_values=None, module_name=None) -> None:
  """One absl flag per flag field of `cls`: help, default, choices, bounds.

  Required fields are checked by `check_fields` (one line naming the flag), not by absl, whose
  required-flag validators would outlive a replaced flag and fail another command's parse.

  A flag of the same name that another command defined (two commands imported into one
  process: a test session, a user's script) is replaced, so the last command defined parses
  its own flags; `cli.run` defines its command's again before parsing.

  `module_name`: the module the flags belong to (absl's `--help` lists the main module's).
  """
  from absl import flags  # pylint: disable=g-import-not-at-top
  flag_values = flag_values if flag_values is not None else flags.FLAGS
  for field in flag_fields(cls):
    rules, want, name = field.metadata, kind(cls, field), flag_name(field)
    if name in flag_values:
      delattr(flag_values, name)
    default = None if field.default is REQUIRED else field.default
    help_text = rules["help"]
    bounds = dict(lower_bound=rules.get("lower"), upper_bound=rules.get("upper"))
    common = dict(flag_values=flag_values, module_name=module_name)
    if "enum" in rules and want is str:
      flags.DEFINE_enum(name, default, list(rules["enum"]), help_text, **common)
    elif want is bool:
      flags.DEFINE_boolean(name, default, help_text, **common)
    elif want is int:
      if "enum" in rules:
        help_text += f" One of {_choices(rules['enum'])}."
      flags.DEFINE_integer(name, default, help_text, **bounds, **common)
    elif want is float:
      flags.DEFINE_float(name, default, help_text, **bounds, **common)
    elif want is tuple:
      flags.DEFINE_list(name, None if default is None else [str(v) for v in default],
                        help_text, **common)
    else:
      flags.DEFINE_string(name, default, help_text, **common)


def from_flag_values(cls: Type[_C], values: Mapping[str, Any]) -> _C:
  """A config from flag name -> parsed value; list items become the field's item type where
  they can (a bad item is left for `check_fields` to name)."""
  kwargs = {}
  for field in flag_fields(cls):
    name = flag_name(field)
    if name not in values:
      continue
    value = values[name]
    if kind(cls, field) is tuple and value is not None:
      convert = item_kind(cls, field)

      def as_item(item, convert=convert):
        try:
          return convert(item) if isinstance(item, str) and convert is not str else item
        except ValueError:
          return item
      value = tuple(as_item(v) for v in value)
    kwargs[field.name] = value
  return cls(**kwargs)


def from_flags(cls: Type[_C], flag_values=None) -> _C:
  """A config from the parsed absl flags (not yet validated)."""
  from absl import flags  # pylint: disable=g-import-not-at-top
  flag_values = flag_values if flag_values is not None else flags.FLAGS
  return from_flag_values(
      cls, {flag_name(f): flag_values[flag_name(f)].value for f in flag_fields(cls)})


_NOUNS = {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}


def _choices(choices: Iterable) -> str:
  return ", ".join(str(c) if c != "" else "''" for c in choices)


def check_fields(config: Any) -> None:
  """Each flag field's own rules (type, choices, bounds); raises ValueError naming the flag."""
  cls = type(config)
  for field in flag_fields(cls):
    _check_field(cls, field, getattr(config, field.name))


def _check_field(cls: Type, field: dataclasses.Field, value) -> None:
  name, rules, want = flag_name(field), field.metadata, kind(cls, field)
  if field.default is REQUIRED and value in (None, "", ()):
    raise ValueError(f"--{name} is required; --helpshort lists the flags.")
  if value is None and field.default is None:
    return  # An optional flag left out.
  items = value if want is tuple else (value,)
  item_type = item_kind(cls, field)
  numeric = (int, float) if item_type is float else item_type
  if (want is tuple and not isinstance(value, (tuple, list))) or any(
      not isinstance(v, numeric) or (isinstance(v, bool) and item_type is not bool)
      for v in items):
    if want is tuple:
      noun = {int: "comma-separated integers", float: "comma-separated numbers",
              str: "comma-separated strings"}[item_type]
    else:
      noun = _NOUNS[item_type]
    raise ValueError(f"--{name} must be {noun}; got {value!r}.")
  if "enum" in rules:
    bad = [v for v in items if v not in rules["enum"]]
    if bad:
      raise ValueError(f"--{name} must be one of {_choices(rules['enum'])}; got {value!r}.")
  lower, upper = rules.get("lower"), rules.get("upper")
  for v in items:
    if (lower is not None and v < lower) or (upper is not None and v > upper):
      bounds = f"in [{lower}, {upper}]" if upper is not None else f">= {lower}"
      raise ValueError(f"--{name} must be {bounds}; got {value!r}.")


def same_value(a, b) -> bool:
  """Lists and tuples compare as tuples (a Python caller may pass either)."""
  as_tuple = lambda v: tuple(v) if isinstance(v, list) else v  # noqa: E731
  return as_tuple(a) == as_tuple(b)


def changed_settings(stored: Mapping[str, Any], now: Mapping[str, Any],
                     ignore: Iterable[str] = ()) -> Dict[str, Tuple[Any, Any]]:
  """flag -> (then, now) for the flags whose values differ, leaving out `ignore`."""
  ignore = set(ignore)
  return {k: (stored.get(k), now.get(k)) for k in sorted(set(stored) | set(now))
          if k not in ignore and not same_value(stored.get(k), now.get(k))}


def read_flagfile(cls: Type[_C], path: str) -> _C:
  """The config a run's kept flagfile describes (flags of other modules in it are skipped)."""
  from absl import flags  # pylint: disable=g-import-not-at-top
  flag_values = flags.FlagValues()
  define_flags(cls, flag_values)
  flag_values(["stored", f"--flagfile={path}"], known_only=True)
  return from_flags(cls, flag_values)


class ChangedSettings(ValueError):
  """A relaunch into a run directory whose kept flags differ in a setting that matters."""


def check_relaunch(config: CommandConfig, stored_path: str, run_dir: str,
                   may_differ: Iterable[str] = (), may_grow: Iterable[str] = (),
                   overwrite_flag: str = "overwrite") -> List[str]:
  """Compares a relaunch's config with the one its run directory kept (`stored_path`).

  Settings in `may_differ` (logging, checkpoint cadence: they do not change the result) and
  those in `may_grow` raised (e.g. train longer) are echoed; any other difference raises.

  Returns:
    Lines to print, one per setting that changed harmlessly (empty for an identical relaunch
    or a new run directory).

  Raises:
    ChangedSettings: a message whose first line says what to do and whose next lines are
      `then:` / `now:`, naming the flags that differ.
  """
  if not os.path.isfile(stored_path):
    return []
  stored = read_flagfile(type(config), stored_path).flag_values()
  now = config.flag_values()
  harmless = set(may_differ) | {overwrite_flag}
  changed = changed_settings(stored, now)
  notes, blocking = [], {}
  for name, (then, value) in changed.items():
    grew = name in may_grow and then is not None and value is not None and value > then
    if name in harmless or grew:
      notes.append(f"--{name} was {_flag_text(then)} for the kept run, now "
                   f"{_flag_text(value)} (does not change the result)")
    else:
      blocking[name] = (then, value)
  if blocking:
    then = " ".join(f"--{k}={_flag_text(v[0])}" for k, v in blocking.items())
    now_text = " ".join(f"--{k}={_flag_text(v[1])}" for k, v in blocking.items())
    raise ChangedSettings(
        f"{run_dir} holds a run made with other settings; relaunch it as it was "
        f"(--flagfile={stored_path}), pick another directory, or add --{overwrite_flag} to "
        f"start it afresh\n  then: {then}\n  now:  {now_text}")
  return notes


def _flag_text(value) -> str:
  if isinstance(value, (tuple, list)):
    return ",".join(str(v) for v in value)
  return "''" if value in ("", None) else str(value)


def prepare_run_dir(config: CommandConfig, run_dir: str, command: str, overwrite: bool,
                    may_differ: Iterable[str] = (), may_grow: Iterable[str] = (),
                    flags_file: str = defaults.FLAGS_FILE) -> List[str]:
  """Before a resumable run touches `run_dir`: with `overwrite`, empty it (only a directory
  holding `flags_file`, i.e. one of `command`'s); otherwise compare the relaunch with the kept
  settings (`check_relaunch`). Returns the lines to print.

  Raises:
    ChangedSettings: the kept settings differ in one that matters (then:/now: lines).
    ValueError: `overwrite` on a directory that is not one of `command`'s runs.
  """
  stored = os.path.join(run_dir, flags_file)
  if overwrite and os.path.isdir(run_dir):
    if not os.path.isfile(stored):
      raise ValueError(f"--overwrite would delete {run_dir}, which holds no {flags_file} (not "
                       f"a run of {command}): remove it yourself or pick another directory.")
    shutil.rmtree(run_dir)
    return [f"--overwrite: removed {run_dir}; starting afresh."]
  notes = check_relaunch(config, stored, run_dir, may_differ=may_differ, may_grow=may_grow)
  return [f"note: {n}" for n in notes]
