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
