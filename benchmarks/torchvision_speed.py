"""torchvision's S3D inference and training clips/s on CPU (JSON lines), for model_speed.py.

A separate process without TensorFlow: torch and TF in one process crashed here (both bring an
OpenMP runtime). torch and torchvision are never dependencies of d3d_tf.

  python benchmarks/torchvision_speed.py --shapes=16x224x224 --batch=4
"""

import argparse
import json
import os
import time


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--shapes", default="16x224x224", help="Comma-separated TxHxW.")
  parser.add_argument("--batch", type=int, default=4)
  parser.add_argument("--repeats", type=int, default=3)
  parser.add_argument("--classes", type=int, default=400)
  args = parser.parse_args()
  try:
    import torch  # pylint: disable=g-import-not-at-top
    import torchvision  # pylint: disable=g-import-not-at-top
  except ImportError:
    print(json.dumps({"name": "torchvision_s3d", "skipped": "torch/torchvision not installed"}))
    return
  torch.set_num_threads(os.cpu_count())
  model = torchvision.models.video.s3d(num_classes=args.classes)
  optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)
  for shape in args.shapes.split(","):
    size = tuple(int(v) for v in shape.split("x"))
    x = torch.rand(args.batch, 3, *size) * 2 - 1
    y = torch.arange(args.batch) % args.classes

    def infer():
      model.eval()
      with torch.no_grad():
        model(x)

    def train():
      model.train()
      optimizer.zero_grad()
      torch.nn.functional.cross_entropy(model(x), y).backward()
      optimizer.step()

    for mode, step in (("inference", infer), ("training", train)):
      step()
      best = float("inf")
      for _ in range(args.repeats):
        start = time.perf_counter()
        step()
        best = min(best, time.perf_counter() - start)
      print(json.dumps({"name": f"torchvision_s3d_{mode}", "shape": shape, "batch": args.batch,
                        "clips_per_s": round(args.batch / best, 3),
                        "load_average_1min": round(os.getloadavg()[0], 2)}), flush=True)


if __name__ == "__main__":
  main()
