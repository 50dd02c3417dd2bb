"""`TrainConfig`: every flag of `d3d_tf.train`, declared once, its one `validate`, and whether
a run is already finished.

Each field is a flag: its metadata holds the help text and the rules (`enum`, `lower`,
`upper`); `d3d_tf.train` defines its absl flags from them, and `validate` checks the same rules
for callers of `train_lib.train` (plus the rules that tie flags together). A new flag is one
field here. No TensorFlow: `python -m d3d_tf.train --help` must stay fast.
"""

import dataclasses
import importlib.util
import json
import math
import os
from typing import Any, List, Mapping, Optional, Tuple

from d3d_tf.common import config_lib
from d3d_tf.common import defaults

REQUIRED = config_lib.REQUIRED
FLAGS_FILE = defaults.FLAGS_FILE  # The run's settings: `--flagfile=<model_dir>/flags.txt`.
STREAMS = ("rgb", "flow", "d3d")
PRECISIONS = ("none", "mixed_float16", "mixed_bfloat16")
STRATEGIES = ("default", "mirrored", "multi_worker", "tpu")
BACKBONES = ("s3dg", "videoswin")
# `d3d_tf.models.ENDPOINTS` (s3dg_backbone), copied because importing it imports Keras;
# tests/training/test_train_lib.py checks that the two agree.
ENDPOINTS = (
    "Conv2d_1a_7x7", "MaxPool_2a_3x3", "Conv2d_2b_1x1", "Conv2d_2c_3x3", "MaxPool_3a_3x3",
    "Mixed_3b", "Mixed_3c", "MaxPool_4a_3x3", "Mixed_4b", "Mixed_4c", "Mixed_4d", "Mixed_4e",
    "Mixed_4f", "MaxPool_5a_2x2", "Mixed_5b", "Mixed_5c")


_flag = config_lib.flag


@dataclasses.dataclass
class TrainConfig(config_lib.CommandConfig):
  """One training run; each field is the `d3d_tf.train` flag of the same name."""
  stream: str = _flag(REQUIRED, "rgb or flow: one supervised stream; d3d: RGB student + teacher.",
                      enum=STREAMS)
  train_files: str = _flag(REQUIRED, "Glob of training TFRecords (several: comma-separated).")
  model_dir: str = _flag(REQUIRED, "Where checkpoints, logs, models go.")
  unlabelled_train_files: str = _flag(
      "", "d3d: glob of more training TFRecords whose labels the student never sees (replaced "
      "by -1): they add only the distillation term, mixed into the stream in proportion to "
      "the record counts ('': none).")
  eval_files: str = _flag("", "Glob of validation TFRecords ('': none).")
  label_map: str = _flag("", "Label map; default label_map.txt beside the train files.")
  train_steps: int = _flag(1000, "Total optimizer steps.", lower=1)
  checkpoint_every: int = _flag(
      100, "Steps between checkpoints and validations (one Keras epoch).", lower=1)
  keep_checkpoints: int = _flag(3, "Checkpoints kept.", lower=1)
  teacher: str = _flag(
      "", "d3d: .keras file, model dir (its student.keras) or SavedModel dir; two "
      "comma-separated paths = two-stream teacher (input by channels: 3 rgb, 2 flow).")
  same_modality_teacher: bool = _flag(
      False, "d3d: accept one --teacher that reads the student's own input (plain distillation, "
      "e.g. a larger RGB network into this one) instead of refusing it.")
  init_from: str = _flag(
      "", "Start from pretrained weights: a .keras file (e.g. from d3d_tf.convert_weights), a "
      "model dir, a TF-Slim checkpoint prefix or a torchvision .pth. The architecture is the "
      "source's (--depth_multiplier and --final_endpoint are ignored); an RGB source can start "
      "a flow model and the reverse.")
  reset_head: bool = _flag(
      False, "With --init_from: a fresh logits head even when the class count matches (a "
      "different count always gets one).")
  freeze_until: str = _flag(
      "", "With --init_from: freeze the backbone up to this endpoint, e.g. Mixed_4f (its batch "
      "norm runs in inference mode); '' trains everything.", enum=("",) + ENDPOINTS)
  strategy: str = _flag("default", "tf.distribute strategy; multi_worker reads TF_CONFIG.",
                        enum=STRATEGIES)
  tpu: str = _flag("", "TPU name or address for --strategy=tpu.")
  mixed_precision: str = _flag("none", "Models' dtype policy; mixed_float16 adds loss scaling.",
                               enum=PRECISIONS)
  jit_compile: bool = _flag(False, "XLA-compile the train step.")
  optimizer: str = _flag("sgd", "Keras optimizer.", enum=("sgd", "adamw"))
  learning_rate: float = _flag(0.1, "Peak learning rate.", lower=0)
  momentum: float = _flag(0.9, "SGD momentum.", lower=0)
  weight_decay: float = _flag(
      0.0, "Keras optimizers' decoupled weight decay (variables shrink by lr * weight_decay "
      "each step; not an L2 loss term).", lower=0)
  lr_schedule: str = _flag("cosine", "cosine: CosineDecay; step: x lr_decay at lr_boundaries.",
                           enum=("cosine", "step"))
  warmup_steps: int = _flag(0, "Linear warmup steps.", lower=0)
  lr_boundaries: Tuple[int, ...] = _flag((), "Steps of the step schedule.", lower=0)
  lr_decay: float = _flag(0.1, "Factor at each boundary.", lower=0)
  clip_norm: float = _flag(0.0, "Global gradient-norm clip (0: none).", lower=0)
  label_smoothing: float = _flag(0.0, "Label smoothing in [0, 1).", lower=0, upper=0.999)
  label_weight: float = _flag(1.0, "Weight of the label CE.", lower=0)
  distill_weight: float = _flag(1.0, "Weight of distillation (d3d).", lower=0)
  distill_loss: str = _flag("mse", "mse of logits (the paper) or T^2-scaled KL.",
                            enum=("mse", "kl"))
  temperature: float = _flag(1.0, "KL temperature.", lower=1e-6)
  batch_size: int = _flag(8, "GLOBAL batch size (all replicas).", lower=1)
  num_frames: int = _flag(16, "Frames per clip.", lower=1)
  stride: int = _flag(1, "Temporal stride.", lower=1)
  crop_size: int = _flag(112, "Crop height and width.", lower=8)
  depth_multiplier: float = _flag(1.0, "S3D-G width multiplier.", lower=1e-3)
  final_endpoint: str = _flag(
      "Mixed_5c", "Last S3D-G endpoint before the logits head (the full network: Mixed_5c). A "
      "tiny S3D-G on 32-px clips learns motion from RGB in a few thousand steps only when cut "
      "after Mixed_3c (configs/synthetic_*.flags; docs/LAB_NOTEBOOK.md).", enum=ENDPOINTS)
  student_backbone: str = _flag(
      "s3dg", "The RGB model trained (--stream=rgb or d3d): s3dg (the paper's), or videoswin: "
      "keras-cv's Video Swin Transformer, sized by the --videoswin_* flags and built from them "
      "only (its presets need a Kaggle download; pip install 'd3d_tf[videoswin]').",
      enum=BACKBONES)
  videoswin_embed_dim: int = _flag(96, "VideoSwin: channels of the patch embedding (stage 1).",
                                   lower=1)
  videoswin_depths: Tuple[int, ...] = _flag(
      (2, 2, 6, 2), "VideoSwin: transformer blocks per stage (VideoSwin-T: 2,2,6,2).", lower=1)
  videoswin_num_heads: Tuple[int, ...] = _flag(
      (3, 6, 12, 24), "VideoSwin: attention heads per stage; stage i has embed_dim * 2**i "
      "channels, which its heads must divide.", lower=1)
  videoswin_window_size: Tuple[int, ...] = _flag(
      (8, 7, 7), "VideoSwin: attention window in tokens (time, height, width); shrunk to the "
      "token grid where larger.", lower=1)
  videoswin_patch_size: Tuple[int, ...] = _flag(
      (2, 4, 4), "VideoSwin: patch (time, height, width) in frames and pixels.", lower=1)
  videoswin_drop_path_rate: float = _flag(
      0.2, "VideoSwin: stochastic depth rate of the last block (linear from 0).", lower=0,
      upper=0.999)
  dropout_keep_prob: float = _flag(0.8, "Head dropout keep prob.", lower=1e-3, upper=1.0)
  bn_momentum: float = _flag(
      0.999, "Batch-norm moving-average decay. 0.999 is s3dg.py's, for runs of tens of "
      "thousands of steps; short runs need ~0.9 or validation sees unsettled statistics.",
      lower=0.0, upper=1.0)
  sync_batch_norm: bool = _flag(
      False, "S3D-G's batch norm normalises each training batch by the statistics of the "
      "global batch, all-reduced over the replicas (Keras' synchronized batch norm), so the "
      "result does not depend on the replica count. Use it with several replicas (mirrored, "
      "multi_worker, tpu) when each one's share of --batch_size is small (a few clips): its "
      "own statistics are then noisy and the result changes with the replica count. Costs "
      "an all-reduce per BN layer and step and the fused BN kernel; without it (the default, "
      "as the paper) each replica normalises by its own share. One replica: the same math "
      "either way.")
  min_area: float = _flag(defaults.MIN_AREA,
                          "Smallest random crop, as a fraction of the frame area.",
                          lower=0.01, upper=1.0)
  uint8_clips: bool = _flag(
      False, "Training clips leave the input pipeline as uint8 crop_size x crop_size crops "
      "(random position, no scale jitter or resize: records stored at short side >= "
      "crop_size) and are normalised on the accelerator: about half the CPU a clip (docs/"
      "PERFORMANCE.md 6.2). --min_area does not apply. Validation clips are unchanged.")
  resize_on_device: str = _flag(
      "auto", "Training crops leave the input pipeline uint8 (the same random-area crops, "
      "scale jitter and flips as the float clips) and are resized on the accelerator, equal "
      "to the CPU's resize to float rounding; the pipeline's CPU a clip drops to about 0.6-0.7 "
      "(docs/PERFORMANCE.md 6.3). auto: on when a GPU or TPU is present, off on CPUs (there "
      "nothing is gained and clips stay bit for bit as before) and with --jit_compile (crop "
      "sizes vary by batch). Records only; not with --uint8_clips. Validation clips are "
      "unchanged.", enum=("auto", "on", "off"))
  flip: bool = _flag(
      True, "Random left-right flips (flow's x negated). Turn off (--noflip) when the label "
      "depends on direction, e.g. 'move left' vs 'move right': a flip would swap them.")
  seed: Optional[int] = _flag(None, "Seed of init, data order and augmentation.")
  deterministic: bool = _flag(
      False, "Deterministic ops and data (needs --seed); resume replays data.")
  eval_clips: int = _flag(4, "Clips per validation video.", lower=1)
  shuffle_buffer: int = _flag(256, "Records in the shuffle buffer.", lower=0)
  overwrite: bool = _flag(
      False, "Start --model_dir afresh (its checkpoints, logs and models are deleted) instead "
      "of refusing a relaunch whose settings differ from the ones it kept in flags.txt.")
  # Not a flag and not in flags.txt: how a Python caller wants Keras' progress printed.
  verbose: Optional[int] = _flag(
      None, "Keras fit verbosity, and no run-wide bar; None: the "
      "run-wide bar, with Keras silent on a terminal, else one line per epoch (2).", flag=False)

  def check(self):
    _check_rules(self)


def flag_fields() -> Tuple[dataclasses.Field, ...]:
  """The fields that are flags, in declaration order."""
  return config_lib.flag_fields(TrainConfig)


def kind(field: dataclasses.Field) -> type:
  """The flag's value type: bool, int, float, str or tuple (a list of ints)."""
  return config_lib.kind(TrainConfig, field)


def from_flag_values(values: Mapping[str, Any]) -> TrainConfig:
  """A config from parsed flag values; list items that are integers become ints."""
  return config_lib.from_flag_values(TrainConfig, values)


def validate(config: TrainConfig):
  """Checks everything that needs no file; raises ValueError naming the flag.

  The one validator of the run's flags: the CLI calls it after parsing, `train` before work.
  """
  config.validate()


def _check_rules(config: TrainConfig):
  """The rules that tie flags together."""
  def check(ok, message):
    if not ok:
      raise ValueError(message)
  check(config.teacher or not config.same_modality_teacher,
        "--same_modality_teacher needs --teacher.")
  check(config.stream != "d3d" or config.teacher,
        "--stream=d3d needs --teacher (a flow model: .keras file, model dir or SavedModel).")
  check(not config.unlabelled_train_files or config.stream == "d3d",
        f"--unlabelled_train_files needs --stream=d3d (only a teacher can teach on a clip "
        f"without its label); got --stream={config.stream}.")
  check(config.train_steps % config.checkpoint_every == 0,
        f"--train_steps ({config.train_steps}) must be a multiple of --checkpoint_every "
        f"({config.checkpoint_every}).")
  check(config.init_from or not (config.reset_head or config.freeze_until),
        "--reset_head and --freeze_until need --init_from.")
  check(list(config.lr_boundaries) == sorted(config.lr_boundaries),
        f"--lr_boundaries must increase; got {list(config.lr_boundaries)}.")
  check(not config.deterministic or config.seed is not None, "--deterministic needs --seed.")
  default_min_area = next(f.default for f in flag_fields() if f.name == "min_area")
  check(not (config.uint8_clips and config.resize_on_device == "on"),
        "--uint8_clips and --resize_on_device=on are two ways to leave clips uint8: choose one.")
  check(not (config.jit_compile and config.resize_on_device == "on"),
        "--resize_on_device=on feeds crops whose size varies from batch to batch, and "
        "--jit_compile would compile the train step once per size: drop one of them.")
  check(not config.uint8_clips or config.min_area == default_min_area,
        f"--uint8_clips crops crop_size pixels without scale jitter, so --min_area="
        f"{config.min_area} would not apply: leave one of them out.")
  _check_backbone(config)


# S3D-G's flags that mean nothing to a VideoSwin student, and the flag that does the job there.
_S3DG_ONLY = {"depth_multiplier": "--videoswin_embed_dim", "final_endpoint": "--videoswin_depths",
              "bn_momentum": "nothing (VideoSwin has layer norm, no batch norm)",
              "sync_batch_norm": "nothing (VideoSwin has layer norm, no batch norm)"}


def _check_backbone(config: TrainConfig):
  """The rules of --student_backbone: each flag applies to one backbone; raises ValueError."""
  flag_defaults = {f.name: f.default for f in flag_fields()}
  videoswin = [n for n in flag_defaults if n.startswith("videoswin_")]
  if config.student_backbone == "s3dg":
    given = [n for n in videoswin
             if not config_lib.same_value(getattr(config, n), flag_defaults[n])]
    if given:
      raise ValueError(f"--{given[0]} sizes a VideoSwin student: add --student_backbone="
                       "videoswin, or leave it out.")
    return
  if config.stream == "flow":
    raise ValueError("--student_backbone=videoswin trains RGB models (--stream=rgb or d3d); "
                     "flow teachers are S3D-G: leave --student_backbone out.")
  for name, instead in _S3DG_ONLY.items():
    if getattr(config, name) != flag_defaults[name]:
      raise ValueError(f"--{name} is an S3D-G flag; --student_backbone=videoswin uses "
                       f"{instead}: leave --{name} out.")
  if config.init_from:
    raise ValueError("--init_from starts S3D-G runs only; a VideoSwin student is built from the "
                     "--videoswin_* flags (keras-cv's presets need a download from Kaggle).")
  if config.mixed_precision != "none":
    raise ValueError("--mixed_precision needs --student_backbone=s3dg: keras-cv's VideoSwin "
                     "layers take no dtype policy of their own.")
  sizes = {n: len(getattr(config, f"videoswin_{n}")) for n in ("depths", "num_heads")}
  if sizes["depths"] != sizes["num_heads"]:
    raise ValueError(f"--videoswin_num_heads needs one entry per stage of --videoswin_depths "
                     f"({sizes['depths']}); got {sizes['num_heads']}.")
  for stage, heads in enumerate(config.videoswin_num_heads):
    channels = config.videoswin_embed_dim * 2 ** stage
    if channels % heads:
      raise ValueError(f"--videoswin_num_heads: stage {stage} has {channels} channels "
                       f"(--videoswin_embed_dim * 2**{stage}), which {heads} heads do not "
                       "divide.")
  for name in ("window_size", "patch_size"):
    if len(getattr(config, f"videoswin_{name}")) != 3:
      raise ValueError(f"--videoswin_{name} must be 3 integers (time, height, width); got "
                       f"{list(getattr(config, f'videoswin_{name}'))}.")
  if importlib.util.find_spec("keras_cv") is None:
    raise ValueError("--student_backbone=videoswin needs keras-cv, which is not installed: "
                     "pip install 'd3d_tf[videoswin]' (keras-cv==0.9.0).")


# Settings a relaunch may change without changing what the run computes (echoed), and those
# it may raise (train longer); any other difference is refused (`check_relaunch`).
RELAUNCH_MAY_DIFFER = ("checkpoint_every", "keep_checkpoints", "overwrite")
RELAUNCH_MAY_GROW = ("train_steps",)


def prepare_model_dir(config: TrainConfig) -> List[str]:
  """Before a run touches `model_dir`: `--overwrite` empties it; a relaunch is compared with
  the settings it kept. Returns the lines to print.

  Raises:
    config_lib.ChangedSettings: the kept flags.txt differs in a setting that matters (the
      message has then:/now: lines).
    ValueError: --overwrite on a directory that is not a model dir of d3d_tf.train.
  """
  return config_lib.prepare_run_dir(
      config, config.model_dir, "d3d_tf.train", config.overwrite,
      may_differ=RELAUNCH_MAY_DIFFER, may_grow=RELAUNCH_MAY_GROW, flags_file=FLAGS_FILE)


def check_finite(metrics: dict):
  """Raises FloatingPointError when the run's final loss is not finite."""
  if not math.isfinite(metrics.get("loss", 0.0)):
    raise FloatingPointError(f"Training diverged: final loss {metrics['loss']}.")


def finished_run(config: TrainConfig) -> Optional[dict]:
  """The metrics of a run that already reached `train_steps` (its final_metrics.json), after
  saying so; None when there is training left. Needs no TensorFlow, so a rerun is instant.

  Multi-worker runs always go through training (which then has no steps left): workers may
  not see the chief's model dir, and one worker returning early would leave the others
  waiting in their collectives.
  """
  if config.strategy == "multi_worker":
    return None
  try:
    with open(os.path.join(config.model_dir, defaults.FINAL_METRICS_FILE)) as f:
      metrics = json.load(f)
  except (OSError, ValueError):
    return None  # None yet, or unreadable: finishing the run rewrites it.
  if metrics.get("step", 0) < config.train_steps:
    return None
  print(f"Run already finished at step {metrics['step']} of {config.train_steps}: "
        f"{config.model_dir} kept as it was (final_metrics.json).", flush=True)
  check_finite(metrics)
  return metrics
