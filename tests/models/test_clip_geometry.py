"""The clip geometry a classifier stores: it travels with the .keras file, and the rule that
consumers' flags follow (override where meaningful, refuse otherwise, ask when unknown)."""

import keras
import numpy as np
import pytest

from d3d_tf.models import model_files
from d3d_tf.models import ClipGeometry, S3DGBackbone, S3DGClassifier, geometry_of
from d3d_tf.models import clip_geometry as geometry_lib

GEOMETRY = ClipGeometry(num_frames=8, crop_size=32, stride=2, labels=("a", "b", "c"))


def _tiny(channels=3, **kw):
  backbone = S3DGBackbone(input_channels=channels, depth_multiplier=0.125,
                          final_endpoint="Mixed_3c")
  return S3DGClassifier(backbone, 3, **kw)


def test_geometry_travels_with_the_keras_file_and_leaves_outputs_alone(tmp_path):
  model = _tiny(clip_geometry=GEOMETRY)
  path = str(tmp_path / "m.keras")
  model.save(path)
  loaded = keras.saving.load_model(path)
  assert geometry_of(loaded) == GEOMETRY
  x = np.random.default_rng(0).uniform(-1, 1, (1, 8, 32, 32, 3)).astype("float32")
  np.testing.assert_array_equal(model(x).numpy(), loaded(x).numpy())
  # A file saved without geometry (as before it existed) loads with none.
  plain = _tiny()
  plain.save(str(tmp_path / "old.keras"))
  assert geometry_of(keras.saving.load_model(str(tmp_path / "old.keras"))) is None


def test_geometry_must_fit_the_model():
  with pytest.raises(ValueError, match="modality='flow' needs 2 input channels"):
    _tiny(clip_geometry=ClipGeometry(num_frames=8, crop_size=32, modality="flow"))
  with pytest.raises(ValueError, match="lists 2 labels; this model predicts 3"):
    _tiny(clip_geometry=ClipGeometry(num_frames=8, crop_size=32, labels=("a", "b")))
  with pytest.raises(ValueError, match="crop_fraction must be in"):
    ClipGeometry(num_frames=8, crop_size=32, crop_fraction=1.5)
  assert ClipGeometry.from_dict(GEOMETRY.to_dict()) == GEOMETRY


def test_resolve_overrides_refuses_and_asks():
  unset = {"num_frames": None, "stride": None, "crop_size": None, "crop_fraction": None}
  values, notes = geometry_lib.resolve(GEOMETRY, unset, "m.keras")
  assert values == {"num_frames": 8, "stride": 2, "crop_size": 32, "crop_fraction": 0.875}
  assert notes == []
  values, notes = geometry_lib.resolve(GEOMETRY, dict(unset, num_frames=32, stride=2), "m.keras")
  assert values["num_frames"] == 32 and len(notes) == 1
  assert "--num_frames=32 overrides num_frames=8 of m.keras" in notes[0]
  with pytest.raises(ValueError, match="--stride=1 contradicts m.keras, trained with stride=2"):
    geometry_lib.resolve(GEOMETRY, dict(unset, stride=1), "m.keras")
  with pytest.raises(ValueError, match="old.keras does not record .* pass --crop_size"):
    geometry_lib.resolve(None, dict(unset, num_frames=8), "old.keras")
  values, _ = geometry_lib.resolve(None, dict(unset, num_frames=8, crop_size=64), "old.keras")
  assert values == {"num_frames": 8, "stride": 1, "crop_size": 64, "crop_fraction": 0.875}


def test_models_fed_the_same_views_must_agree():
  unset = {"num_frames": None, "stride": None, "crop_size": None}
  other = ClipGeometry(num_frames=16, crop_size=32, stride=2)
  with pytest.raises(ValueError, match="num_frames: 8 vs 16.*pass --num_frames"):
    model_files.resolve_for_models([("a", GEOMETRY), ("b", other)], unset)
  values, notes = model_files.resolve_for_models(
      [("a", GEOMETRY), ("b", other)], dict(unset, num_frames=16))
  assert values["num_frames"] == 16 and notes
  values, notes = model_files.resolve_for_models([("a", GEOMETRY), ("c", None)], unset)
  assert values["crop_size"] == 32 and notes == ["c stores no clip geometry; it gets a's."]


def test_labels_come_from_the_flag_then_the_model_then_the_file(tmp_path):
  (tmp_path / "label_map.txt").write_text("0 x\n1 y\n2 z\n")
  path = str(tmp_path / "m.keras")
  assert model_files.resolve_labels(None, GEOMETRY, path)[0] == ["a", "b", "c"]
  assert model_files.resolve_labels(None, None, path)[0] == ["x", "y", "z"]
  assert model_files.resolve_labels(str(tmp_path / "label_map.txt"), GEOMETRY,
                                       path)[0] == ["x", "y", "z"]
  with pytest.raises(FileNotFoundError, match="stores no class names.*pass --label_map"):
    model_files.resolve_labels(None, None, str(tmp_path / "sub" / "m.keras"))
