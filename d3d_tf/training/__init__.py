"""Training helpers behind `d3d_tf.training.train_lib`: optimizers, teachers, strategies, callbacks."""
