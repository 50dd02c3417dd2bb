"""The committed TF-Slim fixture still converts to the same logits (the name table is frozen)."""

import os

import numpy as np

from d3d_tf.weights import load_slim_classifier

FIXTURE = os.path.join(os.path.dirname(os.path.dirname(__file__)), "fixtures", "slim_s3dg_tiny")


def test_committed_slim_checkpoint_gives_its_recorded_logits():
  model, info = load_slim_classifier(os.path.join(FIXTURE, "model.ckpt"))
  reference = np.load(os.path.join(FIXTURE, "reference.npz"))
  assert info["num_classes"] == 5 and info["architecture"]["depth_multiplier"] == 0.125
  assert info["architecture"]["gating"] and not info["ema_available"]
  np.testing.assert_allclose(model(reference["clip"], training=False), reference["logits"],
                             atol=1e-4)


REAL = os.path.join(os.path.dirname(os.path.dirname(__file__)), "fixtures", "slim_s3dg")


def test_checkpoints_written_by_tf_slims_own_s3dg_graph_give_its_logits():
  # Made by make_fixture.py with tf-slim and tensorflow/models' research/slim/nets/s3dg.py.
  for name, ema in (("rgb_s3dg", True), ("flow_s3d", False)):
    prefix = os.path.join(REAL, name, "model.ckpt")
    reference = np.load(os.path.join(REAL, name, "reference.npz"))
    model, info = load_slim_classifier(prefix)
    assert info["ema_available"] == ema
    np.testing.assert_allclose(model(reference["input"], training=False), reference["logits"],
                               atol=1e-4)
    if ema:
      shadow, _ = load_slim_classifier(prefix, use_ema=True)
      np.testing.assert_allclose(shadow(reference["input"], training=False),
                                 reference["logits_ema"], atol=1e-4)
