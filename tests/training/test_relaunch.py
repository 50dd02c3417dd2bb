"""A relaunch into a kept model dir: settings that change the result must match, or it stops."""

import json
import os
import subprocess
import sys

import pytest

from d3d_tf.common import config_lib
from d3d_tf.training import train_config
from d3d_tf.training.train_config import TrainConfig

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _kept_run(tmp_path, **values):
  config = TrainConfig(stream="rgb", train_files="data/train-*.tfrecord",
                       model_dir=str(tmp_path / "run"), train_steps=200, checkpoint_every=100,
                       learning_rate=0.1, **values)
  os.makedirs(config.model_dir)
  with open(os.path.join(config.model_dir, "flags.txt"), "w") as f:
    f.write(config.to_flagfile())
  return config


def _with(config, **values):
  return TrainConfig(**dict(config.__dict__, **values))


def test_the_same_settings_resume_without_a_word(tmp_path):
  config = _kept_run(tmp_path)
  assert train_config.prepare_model_dir(config) == []


def test_harmless_changes_are_echoed(tmp_path):
  config = _kept_run(tmp_path)
  notes = train_config.prepare_model_dir(_with(config, keep_checkpoints=7, train_steps=400))
  assert notes == [
      "note: --keep_checkpoints was 3 for the kept run, now 7 (does not change the result)",
      "note: --train_steps was 200 for the kept run, now 400 (does not change the result)"]


@pytest.mark.parametrize("values, then, now", [
    ({"learning_rate": 0.01}, "then: --learning_rate=0.1", "now:  --learning_rate=0.01"),
    ({"train_steps": 100}, "then: --train_steps=200", "now:  --train_steps=100"),
    ({"seed": 3, "flip": False}, "then: --flip=True --seed=''", "now:  --flip=False --seed=3"),
])
def test_other_changes_stop_naming_the_flags(tmp_path, values, then, now):
  config = _kept_run(tmp_path)
  with pytest.raises(config_lib.ChangedSettings) as error:
    train_config.prepare_model_dir(_with(config, **values))
  lines = str(error.value).splitlines()
  assert "holds a run made with other settings" in lines[0] and "--overwrite" in lines[0]
  assert lines[1:] == [f"  {then}", f"  {now}"]


def test_overwrite_starts_afresh_and_refuses_a_foreign_directory(tmp_path):
  config = _kept_run(tmp_path)
  open(os.path.join(config.model_dir, "ckpt-100.index"), "w").close()
  notes = train_config.prepare_model_dir(_with(config, learning_rate=0.5, overwrite=True))
  assert notes == [f"--overwrite: removed {config.model_dir}; starting afresh."]
  assert not os.path.exists(config.model_dir)
  foreign = tmp_path / "photos"
  foreign.mkdir()
  (foreign / "cat.jpg").write_bytes(b"x")
  with pytest.raises(ValueError, match="holds no flags.txt"):
    train_config.prepare_model_dir(_with(config, model_dir=str(foreign), overwrite=True))
  assert (foreign / "cat.jpg").exists()


def test_cli_refuses_a_finished_run_relaunched_with_another_rate(tmp_path):
  args = ["--stream=rgb", "--train_files=data/train-*.tfrecord",
          f"--model_dir={tmp_path / 'run'}", "--train_steps=200", "--checkpoint_every=100"]
  os.makedirs(tmp_path / "run")
  # flags.txt as the CLI writes it (absl's flags_into_string, other modules' flags included).
  code = ("import sys; from absl import flags; import d3d_tf.train; "
          "flags.FLAGS(['train'] + sys.argv[1:]); print(flags.FLAGS.flags_into_string())")
  kept = subprocess.run([sys.executable, "-c", code, *args, "--learning_rate=0.1"], cwd=ROOT,
                        capture_output=True, text=True, timeout=120, check=True).stdout
  (tmp_path / "run" / "flags.txt").write_text(kept)
  (tmp_path / "run" / "final_metrics.json").write_text(json.dumps({"step": 200, "loss": 0.1}))
  result = subprocess.run([sys.executable, "-m", "d3d_tf.train", *args, "--learning_rate=0.01"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
  assert result.returncode == 2, result.stderr
  err = result.stderr.strip().splitlines()
  assert err[0].startswith("train: error: ") and "other settings" in err[0], err
  assert err[1:] == ["  then: --learning_rate=0.1", "  now:  --learning_rate=0.01"], err
  same = subprocess.run([sys.executable, "-m", "d3d_tf.train", *args, "--learning_rate=0.1"],
                        cwd=ROOT, capture_output=True, text=True, timeout=120)
  assert same.returncode == 0 and "already finished" in same.stdout, same.stderr


def test_probe_relaunch_with_other_settings_stops(tmp_path):
  from d3d_tf.probing import probe_config  # pylint: disable=g-import-not-at-top
  config = probe_config.ProbeConfig(train_files="t-*.tfrecord", eval_files="v-*.tfrecord",
                                    output_dir=str(tmp_path / "probe"), random_init=True)
  os.makedirs(config.output_dir)
  (tmp_path / "probe" / "flags.txt").write_text(config.to_flagfile())
  grown = probe_config.ProbeConfig(**dict(config.__dict__, steps=600, num_panels=0))
  assert [n.split(" was ")[0] for n in probe_config.prepare_output_dir(grown)] == [
      "note: --num_panels", "note: --steps"]
  with pytest.raises(config_lib.ChangedSettings, match="then: --learning_rate=0.01"):
    probe_config.prepare_output_dir(
        probe_config.ProbeConfig(**dict(config.__dict__, learning_rate=0.1)))
