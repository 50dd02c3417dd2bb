"""Can a network learn motion from RGB on the synthetic benchmark, within a CPU budget?

D3D can only help an RGB network that is able to learn some motion. This script separates "the
data cannot be learned from RGB" from "this network does not learn it": it trains, on the same
in-memory clips (no records, no flow), the tiny full S3D-G, S3D-G cut after Conv2d_2c_3x3 or
after Mixed_3c (the quickstart's since 2026-12-01), and a plain 3D CNN (the S3D-G stem, then
three 3x3x3 conv layers) alone and with one S3D-G trait added each: S3D-G's initialiser
(truncated normal, stddev 0.01, as `s3dg.py`), its max-pool after the stem, its separable conv
unit, its classifier head. Held-out accuracy above chance means motion was learned: a single
frame carries no class by the benchmark's design. `--speed 2 --classes all` gives the clips of
configs/synthetic_data.flags (actor scale 2 is the default here).

Prints one JSON object per line: `motion_learnability/<model>/val_top1@<step>` (held-out
clips, centre window), `.../train_top1@<step>` (training clips, centre window, inference
mode: high train and chance val is memorisation) and `.../train_loss@<step>`.
Usage: python benchmarks/motion_learnability.py [--models s3dg,plain3d] [--steps 300]
Default models: the first four, about 8 min on 2 cores; --models=all adds the rest.
The quickstart's choice: --models s3dg,s3dg_mixed3c --classes all --speed 2 --steps 2000.
"""

import argparse
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import cv2  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from d3d_tf.models import S3DGBackbone, S3DGClassifier  # noqa: E402
from d3d_tf.models.s3dg_layers import STConv3D  # noqa: E402
from d3d_tf.models.frame_ops import FrameConv3D  # noqa: E402
from tfrecords_tools import synthetic  # noqa: E402

# plain3d_<change> each add one of S3D-G's differences to plain3d, to find the one that stalls.
MODELS = ("s3dg", "s3dg_conv2c", "plain3d", "plain3d_s3dg_init", "plain3d_maxpool",
          "plain3d_separable", "plain3d_s3dg_head", "s3dg_mixed3c")


def render_split(split, classes, per_class, args):
  """Uint8 clips [T_i, crop, crop, 3] and labels of one split, rendered at `--render_size`."""
  clips, labels = [], []
  for label, name in enumerate(classes):
    for index in range(per_class):
      spec = synthetic.ClipSpec(args.seed, split, synthetic.CLASSES.index(name), index,
                                size=args.render_size, clutter=False,
                                actor_scale=args.actor_scale, speed=args.speed)
      frames = synthetic.render_clip(spec)
      clips.append(np.stack([cv2.resize(f, (args.crop, args.crop), interpolation=cv2.INTER_AREA)
                             for f in frames]))
      labels.append(label)
  return clips, np.array(labels)


def windows(clips, indices, num_frames, rng=None):
  """Float [-1, 1] windows of `num_frames`: random offsets with `rng`, else centred."""
  out = []
  for i in indices:
    clip = clips[i]
    span = len(clip) - num_frames
    start = rng.integers(0, span + 1) if rng is not None else span // 2
    out.append(clip[start:start + num_frames])
  return np.stack(out).astype(np.float32) / 127.5 - 1.0


def plain3d(num_classes, initializer="glorot_uniform", maxpool=False, separable=False,
            s3dg_head=False):
  """S3D-G's stem (3x7x7, stride 2), then three 3x3x3 conv > BN > ReLU > 1x2x2 max-pool.

  The flags add one S3D-G trait each: `maxpool` its 1x3x3 stride-2 max-pool after the stem,
  `separable` its separable conv unit (spatial conv > BN > ReLU, then an identity-initialised
  temporal conv > ReLU), `s3dg_head` its classifier (dropout 0.2, 1x1x1 conv, mean).
  """
  layers = keras.layers
  model = [FrameConv3D(16, (3, 7, 7), strides=2, padding="same", use_bias=False,
                         kernel_initializer=initializer),
           layers.BatchNormalization(momentum=0.9), layers.ReLU()]
  if maxpool:
    model.append(layers.MaxPooling3D((1, 3, 3), strides=(1, 2, 2), padding="same"))
  for filters in (16, 32, 64):
    if separable:
      model.append(STConv3D(filters, (3, 3, 3), separable=True, bn_momentum=0.9))
    else:
      model += [layers.Conv3D(filters, 3, padding="same", use_bias=False,
                              kernel_initializer=initializer),
                layers.BatchNormalization(momentum=0.9), layers.ReLU()]
    model.append(layers.MaxPooling3D((1, 2, 2)))
  if s3dg_head:
    model += [layers.Dropout(0.2), layers.Conv3D(num_classes, 1), layers.GlobalAveragePooling3D()]
  else:
    model += [layers.GlobalAveragePooling3D(), layers.Dense(num_classes)]
  return keras.Sequential(model)


def build(name, num_classes, args):
  if name.startswith("plain3d"):
    change = name[len("plain3d_"):]
    initializer = (keras.initializers.TruncatedNormal(stddev=0.01) if change == "s3dg_init"
                   else "glorot_uniform")
    return plain3d(num_classes, initializer, maxpool=change == "maxpool",
                   separable=change == "separable", s3dg_head=change == "s3dg_head")
  final = {"s3dg_conv2c": "Conv2d_2c_3x3", "s3dg_mixed3c": "Mixed_3c"}.get(name, "Mixed_5c")
  backbone = S3DGBackbone(input_channels=3, depth_multiplier=args.depth_multiplier,
                          bn_momentum=0.9, final_endpoint=final)
  return S3DGClassifier(backbone, num_classes)


def emit(name, value, unit):
  print(json.dumps({"name": name, "value": round(float(value), 4), "unit": unit}), flush=True)


def top1(model, x, y):
  logits = model.predict(x, batch_size=32, verbose=0)
  return float(np.mean(np.argmax(logits, axis=-1) == y))


def run(name, data, args):
  (train, y_train), (val, y_val) = data
  keras.utils.set_random_seed(args.seed)
  rng = np.random.default_rng(args.seed)
  model = build(name, int(y_train.max()) + 1, args)
  schedule = keras.optimizers.schedules.CosineDecay(
      0.0, args.steps, warmup_target=args.learning_rate, warmup_steps=10)
  model.compile(keras.optimizers.AdamW(schedule, weight_decay=1e-4),
                keras.losses.SparseCategoricalCrossentropy(from_logits=True))
  x_val = windows(val, range(len(val)), args.frames)
  x_train_eval = windows(train, range(len(train)), args.frames)
  losses, start = [], time.perf_counter()
  for step in range(1, args.steps + 1):
    batch = rng.integers(0, len(train), args.batch_size)
    losses.append(model.train_on_batch(windows(train, batch, args.frames, rng), y_train[batch]))
    if step % args.eval_every == 0 or step == args.steps:
      prefix = f"motion_learnability/{name}"
      emit(f"{prefix}/train_loss@{step}", np.mean(losses[-args.eval_every:]), "nats")
      emit(f"{prefix}/train_top1@{step}", top1(model, x_train_eval, y_train), "fraction")
      emit(f"{prefix}/val_top1@{step}", top1(model, x_val, y_val), "fraction")
  emit(f"motion_learnability/{name}/seconds", time.perf_counter() - start, "s")


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--models", default=",".join(MODELS[:4]),
                      help=f"Comma-separated, or 'all': {MODELS}.")
  parser.add_argument("--classes", default="move_right,move_left,move_up,move_down",
                      help=f"Comma-separated synthetic classes, of {synthetic.CLASSES}, or "
                      "'all'.")
  parser.add_argument("--train_per_class", type=int, default=30)
  parser.add_argument("--val_per_class", type=int, default=10)
  parser.add_argument("--actor_scale", type=float, default=2.0,
                      help="Actor radius multiplier (the quickstart's data use 1).")
  parser.add_argument("--speed", type=float, default=1.0,
                      help="Motion speed multiplier (configs/synthetic_data.flags uses 2).")
  parser.add_argument("--render_size", type=int, default=64, help="Rendered frame side.")
  parser.add_argument("--crop", type=int, default=32, help="Side the frames are resized to.")
  parser.add_argument("--frames", type=int, default=8)
  parser.add_argument("--steps", type=int, default=300)
  parser.add_argument("--eval_every", type=int, default=100)
  parser.add_argument("--batch_size", type=int, default=8)
  parser.add_argument("--learning_rate", type=float, default=3e-3)
  parser.add_argument("--depth_multiplier", type=float, default=0.125)
  parser.add_argument("--seed", type=int, default=0)
  args = parser.parse_args()
  models = list(MODELS) if args.models == "all" else [m for m in args.models.split(",") if m]
  unknown = [m for m in models if m not in MODELS]
  classes = (list(synthetic.CLASSES) if args.classes == "all"
             else [c for c in args.classes.split(",") if c])
  unknown_classes = [c for c in classes if c not in synthetic.CLASSES]
  if unknown or unknown_classes or len(classes) < 2:
    parser.error(f"--models must be of {MODELS} and --classes at least two of "
                 f"{synthetic.CLASSES}. Received: models={unknown}, classes={classes}")
  if args.frames > 16:
    parser.error(f"--frames must be <= 16 (the shortest synthetic clip). Received: {args.frames}")
  data = (render_split("train", classes, args.train_per_class, args),
          render_split("val", classes, args.val_per_class, args))
  emit("motion_learnability/chance", 1.0 / len(classes), "fraction")
  for name in models:
    run(name, data, args)


if __name__ == "__main__":
  main()
