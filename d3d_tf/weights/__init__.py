"""Pretrained weights: TF-Slim (D3D release) and torchvision S3D checkpoints, fine-tuning starts."""

from d3d_tf.weights.assign import WeightsError
from d3d_tf.weights.slim_checkpoint import load_slim_classifier
from d3d_tf.weights.torchvision_state_dict import load_torchvision_classifier

__all__ = ["WeightsError", "load_slim_classifier", "load_torchvision_classifier"]
