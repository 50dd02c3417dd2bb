"""The evaluation recipe convert_weights prints for each pretrained source."""

import pytest

from d3d_tf import convert_weights
from d3d_tf.weights import recipes


def test_torchvision_recipe_is_15_fps_128_frames_and_a_224_crop_of_256():
  build, evaluate = recipes.recipe_commands("torchvision", "pretrained/s3d.keras")
  assert build.split(" \\\n      ") == [
      "python -m tfrecords_tools.build_tfrecords", "--layout=kinetics",
      "--input=kinetics400/validate.csv", "--video_dir=kinetics400/videos", "--splits=val",
      "--label_map=pretrained/label_map.txt", "--output_dir=records/kinetics400_val_torchvision",
      "--short_side=256", "--fps=15", "--flow=none"]
  assert evaluate.split(" \\\n      ") == [
      "python -m d3d_tf.evaluate", "--models=pretrained/s3d.keras",
      "'--eval_files=records/kinetics400_val_torchvision/val-*.tfrecord'",
      "--output_dir=eval/pretrained",
      "--num_clips=1", "--num_frames=128", "--crop_size=224", "--crop_fraction=0.875"]


def test_release_recipe_keeps_the_rate_and_a_flow_model_gets_tvl1_records():
  build, evaluate = recipes.recipe_commands("slim", "d3d_flow.keras", flow=True)
  assert build.endswith("--short_side=224 \\\n      --fps=0 \\\n      --flow=tvl1 \\\n"
                        "      --flow_bound=20")
  assert "--label_map=label_map.txt" in build
  assert "--output_dir=records/kinetics400_val_slim_tvl1" in build
  assert evaluate.endswith("--num_clips=1 \\\n      --num_frames=64 \\\n      --crop_size=224 "
                           "\\\n      --crop_fraction=1")


def test_printed_recipe_names_the_protocol_and_the_caveat():
  text = recipes.format_recipe("torchvision", "pretrained/s3d.keras")
  lines = text.splitlines()
  assert lines[0] == (
      "To compare with Kinetics-400 val top-1 68.4% (torchvision, one 128-frame clip at 15 fps), "
      "evaluate as the source did: 15 fps, short side 256, 1 clip(s) of 128 frames, centre 224 "
      "crop of 0.875 of the short side (edit the paths; docs/PRETRAINED.md):")
  assert lines[1] == "  python -m tfrecords_tools.build_tfrecords \\"
  assert lines[-1].startswith("Note: torchvision resized frames to 256x256")
  slim = recipes.format_recipe("slim", "d3d_rgb.keras").splitlines()
  assert "the videos' own frame rate, short side 224" in slim[0] and slim[-1].startswith("  ")
  with pytest.raises(ValueError, match="source must be one of"):
    recipes.format_recipe("caffe", "x.keras")


@pytest.mark.parametrize("source", ["slim", "torchvision"])
def test_recipe_clip_shape_is_the_one_the_converted_model_stores(source):
  recipe = recipes.RECIPES[source]
  assert convert_weights.SOURCE_GEOMETRY[source] == dict(
      num_frames=recipe.num_frames, crop_size=recipe.crop_size,
      crop_fraction=recipe.crop_fraction)
