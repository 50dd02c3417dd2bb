"""Synchronized batch norm: S3D-G trained on 2 replicas matches 1 replica only with it."""

import json
import os
import subprocess
import sys

import keras
import pytest

from d3d_tf.models import S3DGBackbone, S3DGClassifier
from d3d_tf.training import train_config
from d3d_tf.weights import init_from

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))


def _batch_norms(model):
  return [layer for layer in model._flatten_layers()
          if isinstance(layer, keras.layers.BatchNormalization)]


def test_every_batch_norm_is_synchronized_and_the_setting_survives_saving(tmp_path):
  backbone = S3DGBackbone(depth_multiplier=0.125, final_endpoint="Mixed_3c",
                          sync_batch_norm=True)
  model = S3DGClassifier(backbone, 3)
  norms = _batch_norms(model)
  assert len(norms) == 15 and all(layer.synchronized for layer in norms)
  path = str(tmp_path / "m.keras")
  model.save(path)
  loaded = keras.saving.load_model(path, compile=False)
  assert loaded.backbone.get_config()["sync_batch_norm"] is True
  assert all(layer.synchronized for layer in _batch_norms(loaded))
  plain = S3DGBackbone(depth_multiplier=0.125, final_endpoint="Mixed_3c")
  assert plain.get_config()["sync_batch_norm"] is False
  assert not any(layer.synchronized for layer in _batch_norms(plain))
  # A start from pretrained weights trains as the run says, not as the source was trained.
  started, _ = init_from.build_from_source(loaded, 3, 3)
  assert not any(layer.synchronized for layer in _batch_norms(started))
  started, _ = init_from.build_from_source(
      S3DGClassifier(plain, 3), 3, 3, sync_batch_norm=True)
  assert all(layer.synchronized for layer in _batch_norms(started))


def test_flag_is_written_to_flags_txt_and_refused_for_videoswin():
  config = train_config.TrainConfig(stream="rgb", train_files="x", model_dir="m",
                                    sync_batch_norm=True)
  train_config.validate(config)
  assert "--sync_batch_norm\n" in config.to_flagfile()
  swin = train_config.TrainConfig(stream="rgb", train_files="x", model_dir="m",
                                  student_backbone="videoswin", sync_batch_norm=True)
  with pytest.raises(ValueError, match=r"^--sync_batch_norm is an S3D-G flag; .*layer norm"):
    train_config.validate(swin)


@pytest.mark.slow  # A fresh process, 4 one-step runs of a tiny S3D-G.
def test_two_replicas_with_sync_batch_norm_equal_one_replica():
  env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""),
             TF_CPP_MIN_LOG_LEVEL="3")
  proc = subprocess.run([sys.executable, os.path.join(HERE, "sync_bn_helper.py")],
                        capture_output=True, text=True, env=env, timeout=600)
  assert proc.returncode == 0, proc.stderr[-3000:]
  result = json.loads(proc.stdout.strip().splitlines()[-1])
  assert result["replicas"] == {"one_sync": 1, "two_sync": 2, "two_plain": 2}
  assert result["statistics"] == 18  # moving mean and variance of 9 BN layers
  # The step really moved weights and statistics.
  assert result["weight_change"] > 0.1 and result["statistics_change"] > 0.1
  # Synchronized BN is the fused BN's math on one replica and on two.
  for run in ("one_sync", "two_sync"):
    assert result[run]["weights"] < 2e-5, result
    assert result[run]["statistics"] < 1e-6, result
    assert result[run]["replica_spread"] == 0.0
  # Per-replica BN: other gradients, other statistics, and the replicas' copies drift apart.
  assert result["two_plain"]["weights"] > 1e-2, result
  assert result["two_plain"]["statistics"] > 1e-2, result
  assert result["two_plain"]["replica_spread"] > 1e-2, result
