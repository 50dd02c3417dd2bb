"""The run-wide progress callback: steps of `train_steps` from the resumed step, rate, ETA."""

import io
import re
import sys

from d3d_tf.training import callbacks


class _Terminal(io.StringIO):
  def isatty(self):
    return True


def _run(bar, epochs, steps_per_epoch, initial_epoch=0):
  """Calls the callback as `fit` would, with fake logs and no model."""
  bar.on_train_begin()
  for epoch in range(initial_epoch, epochs):
    for batch in range(steps_per_epoch):
      bar.on_train_batch_end(batch, {"loss": 0.5})
    bar.on_epoch_end(epoch, {"loss": 0.5, "val_top1": 0.25, "note": "not a number"})
  bar.on_train_end()


def test_resumed_run_counts_steps_of_the_whole_run_with_rate_and_eta():
  stream = io.StringIO()
  bar = callbacks.TrainProgress(100, initial_step=60, epochs=10, stream=stream, interval=0.0)
  _run(bar, epochs=10, steps_per_epoch=10, initial_epoch=6)
  lines = stream.getvalue().splitlines()
  assert lines[0].startswith("training 60/100 steps 60% | ")
  counts = [int(re.match(r"training (\d+)/100 steps", line).group(1)) for line in lines]
  assert counts == list(range(60, 101)) and bar.step == 100
  assert re.match(r"training 100/100 steps 100% \| \d+\.\d\d steps/s \| ETA \d\d:\d\d \| "
                  r"elapsed \d\d:\d\d \| loss 0\.5000$", lines[-1])
  assert "epoch" not in stream.getvalue()  # Epoch lines only when asked for.


def test_on_a_terminal_epoch_lines_are_written_whole_above_the_bar():
  stream = _Terminal()
  bar = callbacks.TrainProgress(20, initial_step=10, epochs=2, stream=stream, epoch_lines=True)
  _run(bar, epochs=2, steps_per_epoch=10, initial_epoch=1)
  text = stream.getvalue()
  assert "\repoch 2/2 (step 20/20): loss 0.5 - val_top1 0.25\n" in text.replace("\r\x1b[A", "\r")
  assert "20/20" in text


def test_epoch_line_without_logs():
  assert callbacks.epoch_line(0, 3, 5, 15, None) == "epoch 1/3 (step 5/15)"


def test_train_lib_shows_the_bar_unless_a_caller_sets_verbose(monkeypatch):
  from d3d_tf.training import train_lib  # pylint: disable=g-import-not-at-top
  config = train_lib.TrainConfig(stream="rgb", train_files="x", model_dir="m", train_steps=40,
                                 checkpoint_every=10)
  monkeypatch.setattr(sys, "stdout", io.StringIO())
  verbose, bar = train_lib._progress(config, True, 20, 4)
  # One report per run: Keras is silent in a log too, and the bar writes the epoch lines.
  assert verbose == 0 and isinstance(bar, callbacks.TrainProgress) and bar._epoch_lines
  monkeypatch.setattr(sys, "stdout", _Terminal())
  assert train_lib._progress(config, True, 20, 4)[0] == 0
  assert train_lib._progress(config, False, 20, 4)[1] is None
  quiet = train_lib.TrainConfig(stream="rgb", train_files="x", model_dir="m", train_steps=40,
                                verbose=0)
  assert train_lib._progress(quiet, True, 0, 4) == (0, None)
