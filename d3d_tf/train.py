r"""Trains an S3D-G stream (rgb, flow) or a D3D student (rgb distilled from a flow teacher).

Usage:
  python -m tfrecords_tools.make_synthetic --output_dir=runs/synthetic/data
  python -m d3d_tf.train --flagfile=configs/synthetic_flow.flags
  python -m d3d_tf.train --flagfile=configs/synthetic_d3d.flags

The model dir gets flags.txt (rerun with `--flagfile=<model_dir>/flags.txt`), label_map.txt,
environment.json, checkpoints/, logs/ (TensorBoard), student.keras, best/student.keras and
final_metrics.json. Relaunching the same command resumes from the last checkpoint. Bad input
ends with one line naming the problem and exit code 2.
"""

import sys

from absl import app
from absl import flags


_STREAM = flags.DEFINE_enum("stream", None, ["rgb", "flow", "d3d"],
                            "rgb or flow: one supervised stream; d3d: RGB student + teacher.")
_TRAIN_FILES = flags.DEFINE_string("train_files", None, "Glob of training TFRecords.")
_MODEL_DIR = flags.DEFINE_string("model_dir", None, "Where checkpoints, logs, models go.")
_EVAL_FILES = flags.DEFINE_string("eval_files", "", "Glob of validation TFRecords ('': none).")
_LABEL_MAP = flags.DEFINE_string("label_map", "",
                                 "Label map; default label_map.txt beside the train files.")
_TRAIN_STEPS = flags.DEFINE_integer("train_steps", 1000, "Total optimizer steps.", lower_bound=1)
_CHECKPOINT_EVERY = flags.DEFINE_integer(
    "checkpoint_every", 100, "Steps between checkpoints and validations (one Keras epoch).",
    lower_bound=1)
_KEEP_CHECKPOINTS = flags.DEFINE_integer("keep_checkpoints", 3, "Checkpoints kept.",
                                         lower_bound=1)
_TEACHER = flags.DEFINE_string(
    "teacher", "", "d3d: .keras file, model dir (its student.keras) or SavedModel dir; two "
    "comma-separated paths = two-stream teacher (input by channels: 3 rgb, 2 flow).")
_INIT_FROM = flags.DEFINE_string(
    "init_from", "", "Start from pretrained weights: a .keras file (e.g. from "
    "d3d_tf.convert_weights), a model dir, a TF-Slim checkpoint prefix or a torchvision .pth. "
    "The architecture is the source's (--depth_multiplier and --final_endpoint are ignored); "
    "an RGB source can start a flow model and the reverse.")
_RESET_HEAD = flags.DEFINE_boolean(
    "reset_head", False, "With --init_from: a fresh logits head even when the class count "
    "matches (a different count always gets one).")
_FREEZE_UNTIL = flags.DEFINE_string(
    "freeze_until", "", "With --init_from: freeze the backbone up to this endpoint, e.g. "
    "Mixed_4f (its batch norm runs in inference mode); '' trains everything.")
_STRATEGY = flags.DEFINE_enum("strategy", "default", ["default", "mirrored", "multi_worker", "tpu"],
                              "tf.distribute strategy; multi_worker reads TF_CONFIG.")
_TPU = flags.DEFINE_string("tpu", "", "TPU name or address for --strategy=tpu.")
_MIXED_PRECISION = flags.DEFINE_enum(
    "mixed_precision", "none", ["none", "mixed_float16", "mixed_bfloat16"],
    "Models' dtype policy; mixed_float16 adds loss scaling.")
_JIT_COMPILE = flags.DEFINE_boolean("jit_compile", False, "XLA-compile the train step.")
_OPTIMIZER = flags.DEFINE_enum("optimizer", "sgd", ["sgd", "adamw"], "Keras optimizer.")
_LEARNING_RATE = flags.DEFINE_float("learning_rate", 0.1, "Peak learning rate.", lower_bound=0)
_MOMENTUM = flags.DEFINE_float("momentum", 0.9, "SGD momentum.", lower_bound=0)
_WEIGHT_DECAY = flags.DEFINE_float(
    "weight_decay", 0.0, "Keras optimizers' decoupled weight decay (variables shrink by "
    "lr * weight_decay each step; not an L2 loss term).", lower_bound=0)
_LR_SCHEDULE = flags.DEFINE_enum("lr_schedule", "cosine", ["cosine", "step"],
                                 "cosine: CosineDecay; step: x lr_decay at lr_boundaries.")
_WARMUP_STEPS = flags.DEFINE_integer("warmup_steps", 0, "Linear warmup steps.", lower_bound=0)
_LR_BOUNDARIES = flags.DEFINE_list("lr_boundaries", [], "Steps of the step schedule.")
_LR_DECAY = flags.DEFINE_float("lr_decay", 0.1, "Factor at each boundary.", lower_bound=0)
_CLIP_NORM = flags.DEFINE_float("clip_norm", 0.0, "Global gradient-norm clip (0: none).",
                                lower_bound=0)
_LABEL_SMOOTHING = flags.DEFINE_float("label_smoothing", 0.0, "Label smoothing in [0, 1).",
                                      lower_bound=0, upper_bound=0.999)
_LABEL_WEIGHT = flags.DEFINE_float("label_weight", 1.0, "Weight of the label CE.", lower_bound=0)
_DISTILL_WEIGHT = flags.DEFINE_float("distill_weight", 1.0, "Weight of distillation (d3d).",
                                     lower_bound=0)
_DISTILL_LOSS = flags.DEFINE_enum("distill_loss", "mse", ["mse", "kl"],
                                  "mse of logits (the paper) or T^2-scaled KL.")
_TEMPERATURE = flags.DEFINE_float("temperature", 1.0, "KL temperature.", lower_bound=1e-6)
_BATCH_SIZE = flags.DEFINE_integer("batch_size", 8, "GLOBAL batch size (all replicas).",
                                   lower_bound=1)
_NUM_FRAMES = flags.DEFINE_integer("num_frames", 16, "Frames per clip.", lower_bound=1)
_STRIDE = flags.DEFINE_integer("stride", 1, "Temporal stride.", lower_bound=1)
_CROP_SIZE = flags.DEFINE_integer("crop_size", 112, "Crop height and width.", lower_bound=8)
_DEPTH_MULTIPLIER = flags.DEFINE_float("depth_multiplier", 1.0, "S3D-G width multiplier.",
                                       lower_bound=1e-3)
_FINAL_ENDPOINT = flags.DEFINE_string(
    "final_endpoint", "Mixed_5c",
    "Last S3D-G endpoint before the logits head (the full network: Mixed_5c). A tiny S3D-G on "
    "32-px clips learns motion from RGB in a few thousand steps only when cut after Mixed_3c "
    "(configs/synthetic_*.flags; docs/BENCHMARK_NOTES.md).")
_DROPOUT_KEEP_PROB = flags.DEFINE_float("dropout_keep_prob", 0.8, "Head dropout keep prob.",
                                        lower_bound=1e-3, upper_bound=1.0)
_BN_MOMENTUM = flags.DEFINE_float(
    "bn_momentum", 0.999, "Batch-norm moving-average decay. 0.999 is s3dg.py's, for runs of tens "
    "of thousands of steps; short runs need ~0.9 or validation sees unsettled statistics.",
    lower_bound=0.0, upper_bound=1.0)
_MIN_AREA = flags.DEFINE_float(
    "min_area", 0.08, "Smallest random crop, as a fraction of the frame area.", lower_bound=0.01,
    upper_bound=1.0)
_FLIP = flags.DEFINE_boolean(
    "flip", True, "Random left-right flips (flow's x negated). Turn off (--noflip) when the "
    "label depends on direction, e.g. 'move left' vs 'move right': a flip would swap them.")
_SEED = flags.DEFINE_integer("seed", None, "Seed of init, data order and augmentation.")
_DETERMINISTIC = flags.DEFINE_boolean(
    "deterministic", False, "Deterministic ops and data (needs --seed); resume replays data.")
_EVAL_CLIPS = flags.DEFINE_integer("eval_clips", 4, "Clips per validation video.",
                                   lower_bound=1)
_SHUFFLE_BUFFER = flags.DEFINE_integer("shuffle_buffer", 256, "Records in the shuffle buffer.",
                                       lower_bound=0)

flags.mark_flags_as_required(["stream", "train_files", "model_dir"])
flags.register_validator(
    "lr_boundaries", lambda v: all(s.strip().isdigit() for s in v),
    message="--lr_boundaries must be comma-separated non-negative integers.")
flags.register_multi_flags_validator(
    ["train_steps", "checkpoint_every"],
    lambda f: f["train_steps"] % f["checkpoint_every"] == 0,
    message="--train_steps must be a multiple of --checkpoint_every.")
flags.register_multi_flags_validator(
    ["stream", "teacher"], lambda f: f["stream"] != "d3d" or bool(f["teacher"]),
    message="--stream=d3d needs --teacher (a flow model).")
flags.register_multi_flags_validator(
    ["init_from", "reset_head", "freeze_until"],
    lambda f: bool(f["init_from"]) or not (f["reset_head"] or f["freeze_until"]),
    message="--reset_head and --freeze_until need --init_from.")
flags.register_multi_flags_validator(
    ["deterministic", "seed"], lambda f: not f["deterministic"] or f["seed"] is not None,
    message="--deterministic needs --seed.")


def config_from_flags():
  """A `TrainConfig` from the parsed flags."""
  from d3d_tf.train_lib import TrainConfig  # Imports TensorFlow: after flag parsing.
  return TrainConfig(
      stream=_STREAM.value, train_files=_TRAIN_FILES.value, model_dir=_MODEL_DIR.value,
      eval_files=_EVAL_FILES.value, label_map=_LABEL_MAP.value, train_steps=_TRAIN_STEPS.value,
      checkpoint_every=_CHECKPOINT_EVERY.value, keep_checkpoints=_KEEP_CHECKPOINTS.value,
      teacher=_TEACHER.value, init_from=_INIT_FROM.value, reset_head=_RESET_HEAD.value,
      freeze_until=_FREEZE_UNTIL.value, strategy=_STRATEGY.value, tpu=_TPU.value,
      mixed_precision=_MIXED_PRECISION.value, jit_compile=_JIT_COMPILE.value,
      optimizer=_OPTIMIZER.value, learning_rate=_LEARNING_RATE.value, momentum=_MOMENTUM.value,
      weight_decay=_WEIGHT_DECAY.value, lr_schedule=_LR_SCHEDULE.value,
      warmup_steps=_WARMUP_STEPS.value,
      lr_boundaries=tuple(int(b) for b in _LR_BOUNDARIES.value), lr_decay=_LR_DECAY.value,
      clip_norm=_CLIP_NORM.value, label_smoothing=_LABEL_SMOOTHING.value,
      label_weight=_LABEL_WEIGHT.value, distill_weight=_DISTILL_WEIGHT.value,
      distill_loss=_DISTILL_LOSS.value, temperature=_TEMPERATURE.value,
      batch_size=_BATCH_SIZE.value, num_frames=_NUM_FRAMES.value, stride=_STRIDE.value,
      crop_size=_CROP_SIZE.value, depth_multiplier=_DEPTH_MULTIPLIER.value,
      final_endpoint=_FINAL_ENDPOINT.value,
      dropout_keep_prob=_DROPOUT_KEEP_PROB.value, bn_momentum=_BN_MOMENTUM.value,
      min_area=_MIN_AREA.value, flip=_FLIP.value, seed=_SEED.value,
      deterministic=_DETERMINISTIC.value, eval_clips=_EVAL_CLIPS.value,
      shuffle_buffer=_SHUFFLE_BUFFER.value)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  from d3d_tf import train_lib  # pylint: disable=g-import-not-at-top
  try:
    metrics = train_lib.train(config_from_flags(), flags.FLAGS.flags_into_string())
  except (ValueError, FileNotFoundError) as e:
    print(f"Error: {e}", file=sys.stderr)
    sys.exit(2)
  print("Final metrics:", metrics)


def run():
  """Console-script entry point."""
  app.run(main)


if __name__ == "__main__":
  run()
