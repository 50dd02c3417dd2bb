"""examples/distill_in_your_script.py runs end to end on tiny records."""

import os
import runpy

import keras
import pytest
import numpy as np

from tests.training import tiny_data

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.mark.slow
def test_example_script(tmp_path):
  data_dir = tiny_data.write_tiny_records(str(tmp_path / "data"))
  module = runpy.run_path(os.path.join(REPO, "examples", "distill_in_your_script.py"))
  output = str(tmp_path / "student.keras")
  history = module["main"]([
      f"--train_files={data_dir}/train-*.tfrecord", f"--label_map={data_dir}/label_map.txt",
      f"--output={output}", "--steps=2", "--final_endpoint=Mixed_3c"])
  assert np.isfinite(history["loss"][-1]) and history["distill_loss"][-1] > 0
  student = keras.saving.load_model(output)
  assert student.outputs[0].shape[-1] == tiny_data.NUM_CLASSES
  assert (student.clip_geometry.num_frames, student.clip_geometry.crop_size) == (8, 32)
