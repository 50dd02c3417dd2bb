"""How each pretrained source measured its accuracy, as the commands that repeat it here.

A converted model reproduces its source's published top-1 only on clips made the way the source
made them: torchvision's S3D was measured on 128-frame clips at 15 fps, the D3D release on
64-frame clips at the videos' own rate with a 224 short side. The clip shape is stored in the
model (`convert_weights.SOURCE_GEOMETRY`), but the frame rate and the stored resolution are
fixed when the records are built, so `convert_weights` prints the converter and evaluate
commands of the source it converted.
"""

import dataclasses
import os
import shlex
from typing import List


@dataclasses.dataclass(frozen=True)
class EvaluationRecipe:
  """One source's evaluation protocol, in the converter's and evaluate's terms.

  Attributes:
    source: `convert_weights --source`.
    fps: frames per second of the records (0: the videos' own rate).
    short_side: the records' short side in pixels.
    num_frames: frames per clip.
    crop_size: the model's input side.
    crop_fraction: the centre crop's side as a fraction of the short side.
    num_clips: clips averaged per video.
    measured: what the source published, for the reader to compare against.
    caveat: where this pipeline cannot repeat the source exactly ("" when it can).
  """
  source: str
  fps: float
  short_side: int
  num_frames: int
  crop_size: int
  crop_fraction: float
  num_clips: int
  measured: str
  caveat: str = ""


RECIPES = {
    # torchvision's S3D_Weights.KINETICS400_V1: frame_rate 15, clip_len 128, clips_per_video 1;
    # frames resized to 256x256, centre crop 224.
    "torchvision": EvaluationRecipe(
        source="torchvision", fps=15.0, short_side=256, num_frames=128, crop_size=224,
        crop_fraction=0.875, num_clips=1,
        measured="Kinetics-400 val top-1 68.4% (torchvision, one 128-frame clip at 15 fps)",
        caveat="torchvision resized frames to 256x256, squashing the aspect ratio; records "
               "keep it (short side 256), so the 224 crop sees the centre of wide frames "
               "rather than all of their width."),
    # princeton-vl/d3dhelper's notebook: 64 frames, short side 224, centre crop 224, [-1, 1].
    "slim": EvaluationRecipe(
        source="slim", fps=0.0, short_side=224, num_frames=64, crop_size=224,
        crop_fraction=1.0, num_clips=1,
        measured="the D3D release's Kinetics numbers (64-frame clips, short side 224)"),
}


def _command(module: str, flags: List[str]) -> str:
  return " \\\n      ".join([f"python -m {module}"] + [shlex.quote(flag) for flag in flags])


def recipe_commands(source: str, model_path: str, flow: bool = False,
                    records_dir: str = "",
                    annotations: str = "kinetics400/validate.csv",
                    video_dir: str = "kinetics400/videos",
                    output_dir: str = "eval/pretrained") -> List[str]:
  """[build_tfrecords command, evaluate command] that measure `model_path` as `source` did.

  `flow` models need the records' flow: TV-L1 clipped to 20 px, as the release computed it.
  The records take the label map written beside the converted model, so their label indices
  are the model's classes. `records_dir` defaults to one folder per source and flow choice:
  the converter refuses to mix settings in one folder.
  """
  if source not in RECIPES:
    raise ValueError(f"source must be one of {sorted(RECIPES)}. Received: source={source!r}")
  recipe = RECIPES[source]
  records_dir = records_dir or f"records/kinetics400_val_{source}" + ("_tvl1" if flow else "")
  label_map = os.path.join(os.path.dirname(model_path), "label_map.txt")
  build = ["--layout=kinetics", f"--input={annotations}", f"--video_dir={video_dir}",
           "--splits=val", f"--label_map={label_map}", f"--output_dir={records_dir}",
           f"--short_side={recipe.short_side}", f"--fps={recipe.fps:g}",
           "--flow=tvl1" if flow else "--flow=none"]
  if flow:
    build.append("--flow_bound=20")
  evaluate = [f"--models={model_path}", f"--eval_files={records_dir}/val-*.tfrecord",
              f"--output_dir={output_dir}", f"--num_clips={recipe.num_clips}",
              f"--num_frames={recipe.num_frames}", f"--crop_size={recipe.crop_size}",
              f"--crop_fraction={recipe.crop_fraction:g}"]
  return [_command("tfrecords_tools.build_tfrecords", build),
          _command("d3d_tf.evaluate", evaluate)]


def format_recipe(source: str, model_path: str, flow: bool = False) -> str:
  """The lines `convert_weights` prints after converting: the protocol, then its commands."""
  recipe = RECIPES.get(source)
  if recipe is None:
    raise ValueError(f"source must be one of {sorted(RECIPES)}. Received: source={source!r}")
  rate = f"{recipe.fps:g} fps" if recipe.fps else "the videos' own frame rate"
  lines = [f"To compare with {recipe.measured}, evaluate as the source did: {rate}, short side "
           f"{recipe.short_side}, {recipe.num_clips} clip(s) of {recipe.num_frames} frames, "
           f"centre {recipe.crop_size} crop of {recipe.crop_fraction:g} of the short side "
           "(edit the paths; docs/PRETRAINED.md):"]
  lines += ["  " + command for command in recipe_commands(source, model_path, flow)]
  if recipe.caveat:
    lines.append("Note: " + recipe.caveat)
  return "\n".join(lines)
