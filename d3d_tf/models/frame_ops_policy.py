"""Which formulation computes each 3D conv and max pool: 2D ops over frames or TF's native 3D ops.

Which one is faster depends on the CPU and on TensorFlow's kernels (2D-over-frames was 1.9x faster
for inference on one CPU and 1.3x slower on the next), so on CPU the choice is measured, not
assumed: the first time a conv or pool of a given shape is traced, both formulations of it are
timed on a tiny batch (forward, and forward + backward); 2D is kept for inference or training
where it is clearly faster (`TWO_D_MARGIN`), TF's 3D op elsewhere, in a small JSON cache per CPU
model and TensorFlow version (`$XDG_CACHE_HOME/d3d_tf`, else `~/.cache/d3d_tf`). GPUs keep TF's
3D ops (cuDNN).

The same holds for bfloat16 conv gradients: on some CPUs TF's bfloat16 Conv2D backprop kernels are
slow fallbacks (10x float32), on others (AMX) 2-4x faster than float32; so the 2D convs' gradient
precision under `mixed_bfloat16` is measured once as well (`D3D_TF_BF16_CONV_GRADIENT=auto|float32|
bfloat16` forces it).

The choice lives in one explicit `FormulationPolicy` object, resolved once per process from the
environment (`D3D_TF_FRAME_OPS=auto|2d|3d`, default auto) by `current_policy()`; `use_policy`
swaps in another one for a block (an export for another serving device, a test, a benchmark).
The layers hold no choice: they ask the current policy when they are traced, so a traced graph
(a `tf.function`, a SavedModel) keeps the formulation it was traced with.
"""

import contextlib
import dataclasses
import hashlib
import json
import os
import threading
import time
from typing import Callable, Dict, Optional, Tuple

import tensorflow as tf

from d3d_tf.common import machine

MODES = ("auto", "2d", "3d")
DEVICES = ("cpu", "gpu")
ENV_MODE = "D3D_TF_FRAME_OPS"
GRADIENT_DTYPES = ("auto", "float32", "bfloat16")
ENV_GRADIENT = "D3D_TF_BF16_CONV_GRADIENT"
GRADIENT_KEY = "conv2d_gradient:bfloat16"  # The cache entry of the bfloat16 gradient choice.
# 2D over frames is chosen only where it times at most this fraction of TF's 3D op. Timings of
# one layer type in isolation moved by up to 0.12 in their 2D/3D ratio between runs on a 2-core
# machine, and they do not see what a mix of formulations costs between layers (layout
# changes): on an AMX Xeon, taking the faster of each pair by any margin gave models 5-9%
# slower than TF's 3D ops everywhere (docs/PERFORMANCE.md, section 7.1). The clear 2D wins seen
# (1.9x inference, 4.7x training on AMD Zen 4) stay well inside it.
TWO_D_MARGIN = 0.8
# Part of the cache file's name: a change of the choice rule or of what is timed re-measures.
CHOICE_RULE_VERSION = 4


@dataclasses.dataclass(frozen=True)
class OpShape:
  """One conv or max pool: kind "conv" or "pool", (t, h, w) window and strides, "SAME"/"VALID"
  padding, input channels, conv outputs (pools: 0) and compute dtype name.
  """
  kind: str
  window: Tuple[int, int, int]
  strides: Tuple[int, int, int]
  padding: str
  channels: int
  filters: int = 0
  dtype: str = "float32"

  def key(self) -> str:
    """The layer type the choice is made for: kind, window, strides, padding, dtype (see below).

    Not the channel counts: timed per distinct shape on tiny batches, S3D-G's 69 shapes took 30 s
    and most pairs were within timing noise, so that the choice flipped between runs within a
    layer type; per layer type, timed at one representative S3D-G size, it is 8 timings, stable.
    """
    join = lambda values: "x".join(str(int(v)) for v in values)
    return (f"{self.kind}:{join(self.window)}/s{join(self.strides)}/{self.padding.upper()}"
            f"/{self.dtype}")


Timer = Callable[["OpShape"], Dict[str, float]]


cpu_model = machine.cpu_model  # What the measured choices depend on, with the TF version.


def default_cache_dir() -> str:
  base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
  return os.path.join(base, "d3d_tf")


def cache_path(cache_dir: str, cpu: str, tf_version: str) -> str:
  """One file per CPU model and TensorFlow version: what the timings depend on."""
  key = f"{cpu}|{tf_version}|rule{CHOICE_RULE_VERSION}"
  digest = hashlib.sha1(key.encode()).hexdigest()[:12]
  return os.path.join(cache_dir, f"frame_ops_{digest}.json")


def timing_shapes(op: OpShape) -> Tuple[Tuple[int, ...], Optional[Tuple[int, ...]]]:
  """(input, kernel) shapes timed for `op`'s layer type: a mid-network S3D-G map, batch 1.

  An RGB input conv (<= 4 channels) keeps its channels and filters on a 16x112x112 clip; other
  convs map 128 to 128 channels on 8x28x28 (0.1 to 1 GMAC); pools see 128 channels on 8x56x56.
  """
  if op.kind == "pool":
    return (1, 8, 56, 56, 128), None
  if op.channels <= 4:
    return (1, 16, 112, 112, op.channels), tuple(op.window) + (op.channels, op.filters)
  return (1, 8, 28, 28, 128), tuple(op.window) + (128, 128)


def measure(op: OpShape, repeats: int = 5) -> Dict[str, float]:
  """Best seconds of both formulations of `op`, forward and forward + backward, on one clip.

  The backward pass takes the gradients a training step takes: a conv's kernel gradient, and
  its input gradient except for the first conv (whose input is the clip); a pool's input.

  {"inference_2d", "inference_3d", "training_2d", "training_3d"}: the four are run in turns,
  `repeats` rounds, so that a busy machine slows them alike. Runs in a thread of its own: TF's
  graph, tape and device stacks are per thread, so a timing asked for while a model is being
  traced runs eagerly on the CPU, outside that trace.
  """
  return _in_own_thread(lambda: _measure_here(op, repeats), f"the formulations of {op.key()}")


def _in_own_thread(timing: Callable[[], Dict[str, float]], what: str) -> Dict[str, float]:
  """`timing()` run in a new thread (TF's graph, tape and device stacks are per thread)."""
  result = []
  thread = threading.Thread(target=lambda: result.append(timing()))
  thread.start()
  thread.join()
  if not result:
    raise RuntimeError(f"Timing {what} failed (see the error above).")
  return result[0]


def _best_seconds(fns: Dict[str, Callable[[], object]], repeats: int) -> Dict[str, float]:
  """Best wall seconds of each of `fns` (called once first to trace and warm up), run in
  turns `repeats` rounds so that a busy machine slows them alike."""
  for fn in fns.values():
    fn()
  best = dict.fromkeys(fns, float("inf"))
  for _ in range(repeats):
    for name, fn in fns.items():
      start = time.perf_counter()
      fn()
      best[name] = min(best[name], time.perf_counter() - start)
  return best


def _measure_here(op, repeats):
  from d3d_tf.models import frame_ops  # pylint: disable=g-import-not-at-top  # Imports this.
  with tf.device("/CPU:0"):
    dtype = tf.as_dtype(op.dtype)
    input_shape, kernel_shape = timing_shapes(op)
    x = tf.cast(tf.random.stateless_uniform(input_shape, (0, 1)), dtype)
    kernel = tf.zeros((), dtype)  # Pools have none.
    if kernel_shape:
      kernel = tf.cast(tf.random.stateless_normal(kernel_shape, (0, 2)) * 0.05, dtype)
    # What a training step differentiates: a conv's kernel, and its input unless the input is
    # the clip itself (the RGB or flow conv, <= 4 channels); a pool's input.
    wrt_input = op.kind == "pool" or op.channels > 4
    wrt_kernel = op.kind == "conv"

    def step(formulation, training):
      def forward(v, w):
        if op.kind == "conv":
          return frame_ops.conv3d(v, w, op.strides, op.padding, formulation)
        return frame_ops.max_pool3d(v, op.window, op.strides, op.padding, formulation=formulation)

      def backward(v, w):
        sources = [t for t, wanted in ((v, wrt_input), (w, wrt_kernel)) if wanted]
        with tf.GradientTape() as tape:
          tape.watch(sources)
          y = forward(v, w)
        return tape.gradient(y, sources, output_gradients=tf.ones_like(y))

      fn = tf.function(backward if training else forward, autograph=False)
      # Arguments, not captured constants: grappler could fold a constant's conv away.
      return lambda: tf.nest.map_structure(lambda t: t.numpy(), fn(x, kernel))

    return _best_seconds({f"{mode}_{form}": step(form, mode == "training")
                          for mode in ("inference", "training") for form in ("2d", "3d")},
                         repeats)


def measure_conv_gradient(repeats: int = 5) -> Dict[str, float]:
  """Best seconds of a bfloat16 Conv2D forward + backward with float32 or bfloat16 gradients.

  {"float32": s, "bfloat16": s} for a 3x3 conv, 128 to 128 channels on 8 frames of 28x28 (a
  mid-network S3D-G map), the two run in turns; in a thread of its own, as `measure`.
  """
  return _in_own_thread(lambda: _measure_gradient_here(repeats), "the bfloat16 conv gradients")


def _measure_gradient_here(repeats):
  from d3d_tf.models import frame_ops  # pylint: disable=g-import-not-at-top  # Imports this.
  with tf.device("/CPU:0"):
    x = tf.cast(tf.random.stateless_uniform((8, 28, 28, 128), (0, 1)), tf.bfloat16)
    kernel = tf.cast(tf.random.stateless_normal((3, 3, 128, 128), (0, 2)) * 0.05, tf.bfloat16)

    def step(gradient_dtype):
      def backward(v, w):
        with tf.GradientTape() as tape:
          tape.watch([v, w])
          y = frame_ops.conv2d(v, w, (1, 1), "SAME", gradient_dtype)
        return tape.gradient(y, [v, w], output_gradients=tf.ones_like(y))

      fn = tf.function(backward, autograph=False)
      return lambda: [g.numpy() for g in fn(x, kernel)]

    return _best_seconds({dtype: step(dtype) for dtype in GRADIENT_DTYPES[1:]}, repeats)


@dataclasses.dataclass
class FormulationPolicy:
  """Picks "2d" (2D ops over frames) or "3d" (TF's 3D ops) for each conv and max pool.

  Args:
    mode: "auto" (measure on CPU, 3D on GPU), "2d" or "3d" (forced, any device).
    device: "cpu" or "gpu": the device the traced graph will run on.
    cache_file: The JSON of measured choices (auto on CPU); None keeps them in memory only.
    timer: `op -> {"inference_2d": s, "inference_3d": s, "training_2d": s, "training_3d": s}`;
      `measure` by default (tests pass a fake).
    bf16_conv_gradient: "auto" (measured on CPU with `auto` mode; float32 when the formulation
      is forced, bfloat16 on GPU), "float32" or "bfloat16": the dtype of the 2D convs'
      gradients under bfloat16 (3D convs keep TF's own).
    gradient_timer: `() -> {"float32": s, "bfloat16": s}`; `measure_conv_gradient` by default.
  """
  mode: str = "auto"
  device: str = "cpu"
  cache_file: Optional[str] = None
  timer: Timer = measure
  bf16_conv_gradient: str = "auto"
  gradient_timer: Callable[[], Dict[str, float]] = measure_conv_gradient
  _choices: Dict[str, Dict[str, object]] = dataclasses.field(default_factory=dict, repr=False)
  _loaded: bool = dataclasses.field(default=False, repr=False)

  def __post_init__(self):
    if self.mode not in MODES:
      raise ValueError(f"{ENV_MODE} (frame-ops mode) must be one of {', '.join(MODES)}. "
                       f"Received: {self.mode!r}")
    if self.device not in DEVICES:
      raise ValueError(f"serving_device must be one of {', '.join(DEVICES)}. "
                       f"Received: {self.device!r}")
    if self.bf16_conv_gradient not in GRADIENT_DTYPES:
      raise ValueError(f"{ENV_GRADIENT} must be one of {', '.join(GRADIENT_DTYPES)}. "
                       f"Received: {self.bf16_conv_gradient!r}")

  def formulation(self, op: OpShape, training: bool = False) -> str:
    """"2d" or "3d" for `op`: forced, 3D on GPU, else the measured faster one (cached)."""
    if self.mode != "auto":
      return self.mode
    if self.device == "gpu":
      return "3d"
    entry = self.choices().get(op.key())
    if entry is None:
      entry = self._measure(op)
    return entry["training" if training else "inference"]

  def conv_gradient_dtype(self) -> str:
    """"float32" or "bfloat16": the dtype the bfloat16 2D convs' gradients are computed in.

    Forced, else bfloat16 on GPU, float32 when the formulation is forced (no timing: the choice
    that is never a slow fallback), else the measured faster one (cached).
    """
    if self.bf16_conv_gradient != "auto":
      return self.bf16_conv_gradient
    if self.device == "gpu":
      return "bfloat16"
    if self.mode != "auto":
      return "float32"
    entry = self.choices().get(GRADIENT_KEY)
    if entry is None:
      seconds = self.gradient_timer()
      entry = {"training": min(GRADIENT_DTYPES[1:], key=lambda d: seconds[d]),
               "seconds": {k: round(v, 6) for k, v in seconds.items()}}
      self._choices[GRADIENT_KEY] = entry
      self._save()
    return entry["training"]

  def choices(self) -> Dict[str, Dict[str, object]]:
    """The measured choices by `OpShape.key()`: {"inference": f, "training": f, "seconds": ...}."""
    if not self._loaded and self.cache_file and os.path.isfile(self.cache_file):
      try:
        with open(self.cache_file, encoding="utf-8") as f:
          self._choices.update(json.load(f).get("choices", {}))
      except (OSError, ValueError):
        pass  # A corrupt or unreadable cache is measured again and rewritten.
    self._loaded = True
    return self._choices

  def _measure(self, op: OpShape) -> Dict[str, object]:
    seconds = self.timer(op)
    pick = lambda mode: ("2d" if seconds[f"{mode}_2d"] <= TWO_D_MARGIN * seconds[f"{mode}_3d"]
                         else "3d")
    entry = {"inference": pick("inference"), "training": pick("training"),
             "seconds": {k: round(v, 6) for k, v in seconds.items()}}
    self._choices[op.key()] = entry
    self._save()
    return entry

  def _save(self):
    if not self.cache_file:
      return
    data = {"cpu": cpu_model(), "tensorflow": tf.__version__, "choices": self._choices}
    try:
      os.makedirs(os.path.dirname(self.cache_file), exist_ok=True)
      tmp = f"{self.cache_file}.{os.getpid()}.tmp"
      with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=1, sort_keys=True)
      os.replace(tmp, self.cache_file)  # Concurrent writers each leave a whole file.
    except OSError:
      pass  # A read-only home still gets the measured choice, for this process.


def policy_from_env(mode: Optional[str] = None, device: Optional[str] = None,
                    cache_dir: Optional[str] = None) -> FormulationPolicy:
  """A policy from explicit values, else `D3D_TF_FRAME_OPS`, `D3D_TF_BF16_CONV_GRADIENT`, the
  visible devices, the cache dir."""
  mode = (mode or os.environ.get(ENV_MODE) or "auto").strip().lower()
  gradient = (os.environ.get(ENV_GRADIENT) or "auto").strip().lower()
  if device is None:
    device = "gpu" if tf.config.list_logical_devices("GPU") else "cpu"
  path = cache_path(cache_dir or default_cache_dir(), cpu_model(), tf.__version__)
  return FormulationPolicy(mode=mode, device=device, cache_file=path,
                           bf16_conv_gradient=gradient)


_process_policy = []  # [FormulationPolicy]: resolved on first use, once per process.
_scoped = []  # Stack of `use_policy` policies; the innermost wins.


def current_policy() -> FormulationPolicy:
  """The innermost `use_policy` policy, else this process's (from the environment, once)."""
  if _scoped:
    return _scoped[-1]
  if not _process_policy:
    _process_policy.append(policy_from_env())
  return _process_policy[0]


@contextlib.contextmanager
def use_policy(policy: FormulationPolicy):
  """Traces inside this block use `policy` (graphs traced earlier keep their formulation)."""
  _scoped.append(policy)
  try:
    yield policy
  finally:
    _scoped.pop()
