r"""Probes frozen networks for motion: can a linear decoder read optical flow from their features?

D3D's first question (Stroud et al. 2020, Sec. 3): does an RGB network's representation miss
the motion a flow network captures? For each model and endpoint a linear decoder is trained on
the frozen features to regress the clip's optical flow; the held-out end-point error (EPE,
pixels) is reported next to predicting zero flow and predicting the training mean flow. Every
endpoint is scored on one grid (flow averaged over 2 frames x 4x4 pixels by default) so the
numbers compare across endpoints; a random-init network is the control.

Usage:
  python -m d3d_tf.probe --model=runs/synthetic/rgb,runs/synthetic/d3d,runs/synthetic/flow \
    --random_init --train_files='runs/synthetic/data/records/train-*.tfrecord' \
    --eval_files='runs/synthetic/data/records/val-*.tfrecord' \
    --output_dir=runs/synthetic/probe

Writes probe.json ({model: {endpoint: {epe, zero_epe, mean_epe, train_epe}}, plus "_meta"),
probe_epe.png (bars), probe_flow.png (predicted vs true flow), flags.txt and checkpoints/;
relaunching the same command resumes. Bad input ends with one line naming the problem and
exit code 2.
"""

from absl import flags

from d3d_tf.common import cli
from d3d_tf.data import host_memory

_MODEL = flags.DEFINE_list(
    "model", [], "Models to probe: model dirs of d3d_tf.train (their student.keras) or .keras "
    "files, comma-separated; each reads rgb or flow by its input channels.")
_RANDOM_INIT = flags.DEFINE_boolean(
    "random_init", False, "Also probe a random-init S3D-G (the control), built like the first "
    "--model (or with --depth_multiplier when there is none).")
_RANDOM_INIT_INPUT = flags.DEFINE_enum("random_init_input", "rgb", ["rgb", "flow"],
                                       "Input of the random-init control.")
_DEPTH_MULTIPLIER = flags.DEFINE_float(
    "depth_multiplier", 1.0, "Width of the random-init control when no --model is given.",
    lower_bound=1e-3)
_TRAIN_FILES = flags.DEFINE_string("train_files", None, "Glob of TFRecords the probes fit on.")
_EVAL_FILES = flags.DEFINE_string("eval_files", None, "Glob of held-out TFRecords scored.")
_ENDPOINTS = flags.DEFINE_list(
    "endpoints", [], "Endpoints to probe; default: those of Conv2d_2c_3x3, Mixed_3c, Mixed_4f, "
    "Mixed_5c that every model has (a model cut after Mixed_3c gets the first two).")
_OUTPUT_DIR = flags.DEFINE_string("output_dir", None, "Where probe.json, PNGs, checkpoints go.")
_STEPS = flags.DEFINE_integer("steps", 300, "Optimizer steps (all probes train together).",
                              lower_bound=1)
_CHECKPOINT_EVERY = flags.DEFINE_integer("checkpoint_every", 100, "Steps between checkpoints.",
                                         lower_bound=1)
_BATCH_SIZE = flags.DEFINE_integer("batch_size", 8, "Clips per batch.", lower_bound=1)
_LEARNING_RATE = flags.DEFINE_float("learning_rate", 0.01, "Adam peak rate (cosine decay).",
                                    lower_bound=0)
_NUM_FRAMES = flags.DEFINE_integer(
    "num_frames", None, "Frames per clip (even); default: the first model's (stored in it, or "
    "its model dir's flags.txt), else 16.",
    lower_bound=2)
_STRIDE = flags.DEFINE_integer("stride", None, "Temporal stride; default as --num_frames, else 1.",
                               lower_bound=1)
_CROP_SIZE = flags.DEFINE_integer(
    "crop_size", None, "Clip side (a multiple of --space_stride); default as --num_frames, else "
    "112.", lower_bound=8)
_MIN_AREA = flags.DEFINE_float(
    "min_area", None, "Smallest training crop (fraction of the frame); default as --num_frames, "
    "else 0.08.", lower_bound=0.01, upper_bound=1.0)
_SPACE_STRIDE = flags.DEFINE_integer(
    "space_stride", 4, "Target grid cell in pixels (flow averaged over it); 4 is the grid of "
    "Conv2d_2c_3x3.", lower_bound=1)
_STATISTICS_BATCHES = flags.DEFINE_integer(
    "statistics_batches", 8, "Training batches that set each decoder's feature statistics.",
    lower_bound=1)
_EVAL_CLIPS = flags.DEFINE_integer("eval_clips", 1, "Clips per held-out video (centre crop).",
                                   lower_bound=1)
_NUM_PANELS = flags.DEFINE_integer("num_panels", 3, "Held-out clips drawn in probe_flow.png.",
                                   lower_bound=0)
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the data order, the control and the probes.")

flags.mark_flags_as_required(["train_files", "eval_files", "output_dir"])
flags.register_multi_flags_validator(
    ["model", "random_init"], lambda f: bool(f["model"]) or f["random_init"],
    message="Nothing to probe: give --model (model dirs or .keras files) and/or --random_init.")
flags.register_multi_flags_validator(
    ["steps", "checkpoint_every"], lambda f: f["steps"] % f["checkpoint_every"] == 0,
    message="--steps must be a multiple of --checkpoint_every.")


def config_from_flags():
  """A `ProbeConfig` from the parsed flags."""
  from d3d_tf.probing.probe_lib import ProbeConfig  # Imports TensorFlow: after flag parsing.
  return ProbeConfig(
      train_files=_TRAIN_FILES.value, eval_files=_EVAL_FILES.value,
      output_dir=_OUTPUT_DIR.value, models=tuple(_MODEL.value), random_init=_RANDOM_INIT.value,
      random_init_input=_RANDOM_INIT_INPUT.value, depth_multiplier=_DEPTH_MULTIPLIER.value,
      endpoints=tuple(_ENDPOINTS.value), steps=_STEPS.value,
      checkpoint_every=_CHECKPOINT_EVERY.value, batch_size=_BATCH_SIZE.value,
      learning_rate=_LEARNING_RATE.value, num_frames=_NUM_FRAMES.value, stride=_STRIDE.value,
      crop_size=_CROP_SIZE.value, min_area=_MIN_AREA.value, space_stride=_SPACE_STRIDE.value,
      statistics_batches=_STATISTICS_BATCHES.value, eval_clips=_EVAL_CLIPS.value,
      num_panels=_NUM_PANELS.value, seed=_SEED.value)


def main(argv):
  cli.no_arguments(argv, "probe")
  flags_text = flags.FLAGS.flags_into_string()  # Before TensorFlow adds flags of its own.
  host_memory.request_pooled_allocator()  # Before the first TensorFlow op.
  cli.quiet_tensorflow()
  from d3d_tf.probing import probe_lib  # pylint: disable=g-import-not-at-top
  try:
    probe_lib.run_probe(config_from_flags(), flags_text)
  except (ValueError, FileNotFoundError) as e:
    cli.fail("probe", e)


def run():
  """Console-script entry point."""
  cli.run(main, "probe")


if __name__ == "__main__":
  run()
