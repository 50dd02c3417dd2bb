"""D3D in your own script: no CLI, no config, just Keras.

Builds an RGB student and a flow teacher (normally a trained flow model:
`--teacher=model_dir/student.keras`), wraps them in `D3DDistiller`, fits on the record
pipeline and saves the student as a plain Keras model.

  python examples/distill_in_your_script.py --train_files='runs/synthetic/data/records/train-*' \
      --label_map=runs/synthetic/data/records/label_map.txt --output=/tmp/d3d_student.keras
"""

import argparse

import keras

from d3d_tf.data import datasets
from d3d_tf.data.label_map import read_label_map
from d3d_tf.distill import D3DDistiller
from d3d_tf.models import ClipGeometry, S3DGBackbone, S3DGClassifier


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__)
  parser.add_argument("--train_files", required=True)
  parser.add_argument("--label_map", required=True)
  parser.add_argument("--output", required=True, help="Where the student .keras goes.")
  parser.add_argument("--teacher", default="", help="Flow .keras model; default: a fresh one.")
  parser.add_argument("--steps", type=int, default=20)
  parser.add_argument("--batch_size", type=int, default=4)
  parser.add_argument("--num_frames", type=int, default=8)
  parser.add_argument("--crop_size", type=int, default=32)
  parser.add_argument("--depth_multiplier", type=float, default=0.125)
  parser.add_argument("--final_endpoint", default="Mixed_5c",
                      help="Last S3D-G block of both networks (Mixed_3c: a third of the layers).")
  args = parser.parse_args(argv)

  labels = read_label_map(args.label_map)
  num_classes = len(labels)
  # The clips it trains on travel with the saved student: evaluate/export/predict read them.
  geometry = ClipGeometry(num_frames=args.num_frames, crop_size=args.crop_size, labels=labels)
  student = S3DGClassifier(
      S3DGBackbone(input_channels=3, depth_multiplier=args.depth_multiplier,
                   final_endpoint=args.final_endpoint), num_classes, clip_geometry=geometry)
  if args.teacher:
    teacher = keras.saving.load_model(args.teacher, compile=False)
  else:  # Stand-in; a real D3D teacher is a trained flow S3D-G.
    teacher = S3DGClassifier(
        S3DGBackbone(input_channels=2, depth_multiplier=args.depth_multiplier,
                     final_endpoint=args.final_endpoint), num_classes)

  distiller = D3DDistiller(student, teacher, distill_loss="mse", student_input="rgb",
                           teacher_input="flow")
  distiller.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9), jit_compile=False)
  train = datasets.train_dataset(
      args.train_files, batch_size=args.batch_size, num_frames=args.num_frames,
      crop_size=args.crop_size, with_rgb=True, with_flow=True, shuffle_buffer=16)
  history = distiller.fit(train, epochs=1, steps_per_epoch=args.steps, verbose=2)
  distiller.student.save(args.output)
  print(f"Saved the student to {args.output}")
  return history.history


if __name__ == "__main__":
  main()
