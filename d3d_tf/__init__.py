"""d3d_tf: D3D (Distilled 3D Networks) for video action recognition on TF 2 / Keras 3.

D3D (Stroud et al., WACV 2020, https://arxiv.org/abs/1812.08249) trains an RGB S3D-G network to
also predict the logits of a frozen optical-flow teacher, so one RGB model approaches two-stream
accuracy without computing optical flow at test time.

After `import d3d_tf`, our `.keras` files load with `keras.models.load_model(path)`: the model
classes register with Keras as soon as Keras is imported (at once if it already is). A process
that never imports Keras (the converter's workers, a CLI answering `--help`) never loads
TensorFlow on our account.
"""

import importlib
import importlib.abc
import importlib.util
import sys

__version__ = "0.1.0"


class _RegisterAfterKeras(importlib.abc.MetaPathFinder):
  """Imports `d3d_tf.models` (which registers the classes) right after `keras` imports."""

  def find_spec(self, name, path=None, target=None):
    del path, target
    if name != "keras":
      return None
    sys.meta_path.remove(self)
    spec = importlib.util.find_spec("keras")
    if spec is None or spec.loader is None:
      return spec
    execute = spec.loader.exec_module

    def exec_module(module):
      execute(module)
      importlib.import_module("d3d_tf.models")

    spec.loader.exec_module = exec_module
    return spec


if "keras" in sys.modules:
  importlib.import_module("d3d_tf.models")
elif not any(isinstance(f, _RegisterAfterKeras) for f in sys.meta_path):
  sys.meta_path.insert(0, _RegisterAfterKeras())
