"""One dataclass declares a command's flags: absl flags, parsing back, rules, flagfiles."""

import dataclasses
from typing import Optional, Tuple

import pytest
from absl import flags

from d3d_tf.common import config_lib

_flag = config_lib.flag


@dataclasses.dataclass
class _Config(config_lib.CommandConfig):
  model: str = _flag(config_lib.REQUIRED, "A model.")
  crops: int = _flag(1, "Crops.", enum=(1, 3))
  weights: Optional[Tuple[float, ...]] = _flag(None, "Weights.", lower=0)
  names: Tuple[str, ...] = _flag((), "Names.", name="name")
  rate: float = _flag(0.5, "Rate.", lower=0, upper=1)
  verbose: int = _flag(0, "Python only.", flag=False)

  def check(self):
    if self.weights is not None and len(self.weights) != len(self.names):
      raise ValueError("--weights needs one weight per --name.")


def _parsed(*argv):
  values = flags.FlagValues()
  config_lib.define_flags(_Config, values)
  values(["tool", *argv])
  return config_lib.from_flags(_Config, values)


def test_flags_parse_back_to_typed_values():
  config = _parsed("--model=m.keras", "--crops=3", "--weights=1,2.5", "--name=a,b")
  assert config == _Config(model="m.keras", crops=3, weights=(1.0, 2.5), names=("a", "b"))
  config.validate()
  assert "verbose" not in config.flag_values() and config.flag_values()["name"] == ("a", "b")


@pytest.mark.parametrize("values, message", [
    ({"model": None}, "--model is required"),
    ({"crops": 2}, "--crops must be one of 1, 3; got 2."),
    ({"weights": (1.0, -1.0), "names": ("a", "b")}, "--weights must be >= 0"),
    ({"rate": 2.0}, "--rate must be in [0, 1]; got 2.0."),
    ({"weights": (1.0,)}, "--weights needs one weight per --name."),
    ({"names": "ab"}, "--name must be comma-separated strings"),
])
def test_rules_name_the_flag(values, message):
  config = _Config(**dict({"model": "m.keras"}, **values))
  with pytest.raises(ValueError) as error:
    config.validate()
  assert str(error.value).startswith(message), str(error.value)


def test_flagfile_round_trip_skips_other_modules_flags(tmp_path):
  config = _Config(model="m.keras", crops=3, weights=(0.5,), names=("x",), rate=0.25)
  path = tmp_path / "flags.txt"
  path.write_text("--tf_log\n--verbosity=1\n" + config.to_flagfile())
  assert config_lib.read_flagfile(_Config, str(path)) == config


def test_another_commands_flag_of_the_same_name_is_replaced():
  values = flags.FlagValues()
  flags.DEFINE_integer("crops", 7, "Another command's flag.", flag_values=values)
  config_lib.define_flags(_Config, values)
  values(["tool", "--model=m", "--crops=3"])
  assert values["crops"].help.startswith("Crops.") and values.crops == 3


def test_relaunch_notes_and_refusal(tmp_path):
  kept = _Config(model="m.keras", rate=0.25)
  path = tmp_path / "flags.txt"
  path.write_text(kept.to_flagfile())
  assert config_lib.check_relaunch(kept, str(path), "run") == []
  notes = config_lib.check_relaunch(_Config(model="m.keras", rate=0.5), str(path), "run",
                                    may_grow=("rate",))
  assert notes == ["--rate was 0.25 for the kept run, now 0.5 (does not change the result)"]
  with pytest.raises(config_lib.ChangedSettings) as error:
    config_lib.check_relaunch(_Config(model="n.keras", rate=0.1), str(path), "run",
                              may_grow=("rate",))
  assert str(error.value).splitlines()[1:] == ["  then: --model=m.keras --rate=0.25",
                                               "  now:  --model=n.keras --rate=0.1"]
