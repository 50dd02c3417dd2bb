"""Run alone (never beside TensorFlow: importing both in one process crashes): saves a random
torchvision S3D with BN statistics of the clips as a state_dict, and its logits on the clips.

Usage: python torchvision_reference.py CLIPS.npy OUT_DIR  (clips [N, T, H, W, 3] in [-1, 1]).
"""

import os
import sys

import numpy as np
import torch
from torchvision.models.video import s3d

MEAN = np.array((0.43216, 0.394666, 0.37645), np.float32)  # torchvision's video preset.
STD = np.array((0.22803, 0.22145, 0.216989), np.float32)


def main(clips_path, out_dir):
  torch.manual_seed(0)
  model = s3d(num_classes=400)
  clips = np.load(clips_path)
  inputs = ((clips + 1) / 2 - MEAN) / STD
  batch = torch.from_numpy(inputs.transpose(0, 4, 1, 2, 3).copy())
  with torch.no_grad():
    for module in model.modules():
      if isinstance(module, torch.nn.BatchNorm3d):
        module.weight.uniform_(0.5, 1.5)
        module.bias.uniform_(-0.2, 0.2)
        module.momentum = None  # Running statistics = those of the batch below.
    # BN statistics measured on the clips (random ones let a deep random net forget its
    # input: every clip would give the same logits, and the check would see nothing).
    model.train()(batch)
    model.eval()
    for module in model.modules():  # Batch statistics of 2 clips amplify float32 rounding.
      if isinstance(module, torch.nn.BatchNorm3d):
        module.running_var.mul_(1.5)
    model.classifier[1].weight.mul_(3.0)  # Logits of a few units: a 1e-4 check means something.
  torch.save(model.state_dict(), os.path.join(out_dir, "s3d.pth"))
  with torch.no_grad():
    logits = model(torch.from_numpy(inputs.transpose(0, 4, 1, 2, 3).copy())).numpy()
  np.save(os.path.join(out_dir, "logits.npy"), logits)


if __name__ == "__main__":
  main(*sys.argv[1:])
