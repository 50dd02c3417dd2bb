"""3D convs and max pools computed as 2D ops equal TF's 3D ops, forward and backward; the policy
that picks one of them per layer type (forced, measured with a fake timer, cached) picks as told.
"""

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from d3d_tf.models import S3DGBackbone, frame_ops
from d3d_tf.models.s3dg_backbone import ENDPOINTS
from d3d_tf.models.frame_ops import (
    FrameConv3D, FrameMaxPooling3D, conv3d_as_conv2d, max_pool3d_as_pool2d)
from d3d_tf.models.frame_ops_policy import FormulationPolicy, OpShape, use_policy
from d3d_tf.models import frame_ops_policy
from d3d_tf.models.fused_batch_norm import FusedBatchNormalization

FRAME_OPS = FormulationPolicy(mode="2d")


@pytest.mark.parametrize("shape,kernel,strides,padding", [
    ((2, 8, 32, 32, 3), (3, 7, 7), (2, 2, 2), "SAME"),   # S3D-G's first conv.
    ((1, 7, 33, 31, 2), (3, 7, 7), (2, 2, 2), "SAME"),   # Odd sizes pad unevenly.
    ((2, 1, 16, 16, 3), (3, 7, 7), (2, 2, 2), "SAME"),   # A single frame.
    ((1, 6, 12, 12, 3), (3, 7, 7), (1, 2, 2), "SAME"),   # Stride in space only.
    ((2, 5, 9, 9, 6), (1, 1, 1), (1, 1, 1), "SAME"),     # Inception 1x1x1.
    ((2, 5, 9, 10, 6), (1, 3, 3), (1, 1, 1), "SAME"),    # Separable, spatial part.
    ((2, 5, 9, 10, 6), (3, 1, 1), (1, 1, 1), "SAME"),    # Separable, temporal part.
    ((1, 9, 8, 8, 4), (7, 1, 1), (2, 1, 1), "VALID"),    # torchvision's strided temporal conv.
    ((1, 9, 20, 20, 3), (1, 7, 7), (1, 2, 2), "VALID"),  # torchvision's strided spatial conv.
    ((1, 8, 9, 9, 4), (3, 3, 3), (1, 1, 1), "SAME"),     # A full 3x3x3 (I3D's).
    ((1, 8, 9, 9, 4), (1, 1, 1), (2, 1, 1), "SAME"),     # Stride in time only.
])
def test_values_and_gradients_equal_tf_conv3d(shape, kernel, strides, padding):
  rng = np.random.RandomState(0)
  x = tf.constant(rng.rand(*shape).astype("float32"))
  weights = tf.Variable(rng.randn(*kernel, shape[-1], 5).astype("float32"))
  reference = tf.nn.conv3d(x, weights, (1,) + strides + (1,), padding)
  probe = tf.constant(rng.randn(*reference.shape).astype("float32"))

  def value_and_grads(fn):
    with tf.GradientTape(persistent=True) as tape:
      tape.watch(x)
      y = fn()
      loss = tf.reduce_sum(y * probe)
    return y, tape.gradient(loss, weights), tape.gradient(loss, x)

  y_ref, dk_ref, dx_ref = value_and_grads(
      lambda: tf.nn.conv3d(x, weights, (1,) + strides + (1,), padding))
  y, dk, dx = value_and_grads(lambda: conv3d_as_conv2d(x, weights, strides, padding))
  assert y.shape == y_ref.shape
  np.testing.assert_allclose(y, y_ref, rtol=1e-5, atol=1e-4)
  np.testing.assert_allclose(dk, dk_ref, rtol=1e-4, atol=1e-3)
  np.testing.assert_allclose(dx, dx_ref, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("formulation", ["2d", "3d"])
def test_layer_matches_keras_conv3d_with_unknown_sizes(formulation):
  layer = FrameConv3D(4, (3, 7, 7), strides=2, padding="same", use_bias=True)
  stock = keras.layers.Conv3D(4, (3, 7, 7), strides=2, padding="same", use_bias=True)
  x = np.random.RandomState(1).rand(1, 8, 20, 20, 3).astype("float32")
  layer.build(x.shape)
  stock.build(x.shape)
  layer.set_weights([w + 0.1 for w in stock.get_weights()])
  stock.set_weights(layer.get_weights())
  fn = tf.function(lambda v: layer(v), input_signature=[tf.TensorSpec((None,) * 4 + (3,))])
  with use_policy(FormulationPolicy(mode=formulation)):
    np.testing.assert_allclose(fn(x), stock(x), rtol=1e-5, atol=1e-5)


def test_bfloat16_layer_stays_close_to_float32():
  policy_layer = FrameConv3D(8, (1, 3, 3), padding="same", dtype="mixed_bfloat16")
  stock = keras.layers.Conv3D(8, (1, 3, 3), padding="same")
  x = np.random.RandomState(2).rand(2, 4, 10, 10, 6).astype("float32")
  policy_layer.build(x.shape)
  stock.build(x.shape)
  policy_layer.set_weights(stock.get_weights())
  y = policy_layer(x)
  assert y.dtype == "bfloat16"
  np.testing.assert_allclose(tf.cast(y, tf.float32), stock(x), rtol=0.05, atol=0.05)


@pytest.mark.parametrize("shape,pool,strides,padding", [
    ((2, 8, 9, 9, 4), (3, 3, 3), (1, 1, 1), "SAME"),   # Every Inception block's Branch_3.
    ((2, 8, 15, 16, 3), (1, 3, 3), (1, 2, 2), "SAME"),  # MaxPool_2a / 3a.
    ((1, 7, 9, 9, 2), (3, 3, 3), (2, 2, 2), "SAME"),   # MaxPool_4a, odd sizes.
    ((1, 5, 7, 7, 2), (2, 2, 2), (2, 2, 2), "SAME"),   # MaxPool_5a.
    ((1, 9, 11, 11, 2), (3, 3, 3), (2, 2, 2), "VALID"),  # torchvision's, after its own pads.
    ((2, 1, 4, 4, 3), (3, 3, 3), (1, 1, 1), "SAME"),   # A single frame.
])
def test_max_pool_values_and_gradients_equal_tf_max_pool3d(shape, pool, strides, padding):
  # Distinct values: with ties TF's 3D gradient feeds every maximum, the 2D pools one.
  rng = np.random.RandomState(0)
  x = tf.constant(rng.permutation(np.prod(shape)).reshape(shape).astype("float32"))
  reference = tf.nn.max_pool3d(x, (1,) + pool + (1,), (1,) + strides + (1,), padding)
  probe = tf.constant(rng.randn(*reference.shape).astype("float32"))

  def value_and_grad(fn):
    with tf.GradientTape() as tape:
      tape.watch(x)
      y = fn()
      loss = tf.reduce_sum(y * probe)
    return y, tape.gradient(loss, x)

  y_ref, dx_ref = value_and_grad(
      lambda: tf.nn.max_pool3d(x, (1,) + pool + (1,), (1,) + strides + (1,), padding))
  y, dx = value_and_grad(lambda: max_pool3d_as_pool2d(x, pool, strides, padding))
  np.testing.assert_array_equal(y, y_ref)
  np.testing.assert_allclose(dx, dx_ref, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("formulation", ["2d", "3d"])
def test_max_pool_layer_matches_keras_with_unknown_sizes(formulation):
  layer = FrameMaxPooling3D((3, 3, 3), strides=(2, 2, 2), padding="same")
  stock = keras.layers.MaxPooling3D((3, 3, 3), strides=(2, 2, 2), padding="same")
  x = np.random.RandomState(3).randn(2, 7, 10, 9, 3).astype("float32")
  fn = tf.function(lambda v: layer(v), input_signature=[tf.TensorSpec((None,) * 4 + (3,))])
  with use_policy(FormulationPolicy(mode=formulation)):
    np.testing.assert_array_equal(fn(x), stock(x))
  assert keras.layers.deserialize(keras.layers.serialize(layer)).get_config() == layer.get_config()


def test_max_pool_gradient_at_ties_goes_to_one_maximum():
  # TF's CPU MaxPool3DGrad feeds every tied maximum (a window of two 1s passes 2 back for a
  # slope of 1); the 2D pools, like cuDNN, feed one, which is a true subgradient.
  x = tf.constant([1.0, 1.0, 0.5])[None, None, None, :, None]

  def grad_tensor(fn):
    with tf.GradientTape() as tape:
      tape.watch(x)
      y = tf.reduce_sum(fn(x))
    return tape.gradient(y, x)

  grad = lambda fn: grad_tensor(fn).numpy().ravel()

  np.testing.assert_array_equal(
      grad(lambda v: max_pool3d_as_pool2d(v, (1, 1, 3), (1, 1, 3), "VALID")), [1, 0, 0])
  # The 3D formulation keeps that gradient on CPU, graph or eager.
  for form in ("2d", "3d"):
    pool = lambda v, f=form: frame_ops.max_pool3d(v, (1, 1, 3), (1, 1, 3), "VALID", formulation=f)
    np.testing.assert_array_equal(grad(pool), [1, 0, 0])
    np.testing.assert_array_equal(tf.function(lambda: grad_tensor(pool))().numpy().ravel(),
                                  [1, 0, 0])
  np.testing.assert_array_equal(
      grad(lambda v: tf.nn.max_pool3d(v, (1, 1, 1, 3, 1), (1, 1, 1, 3, 1), "VALID")), [1, 1, 0])


def _use_tf_3d_ops(monkeypatch):
  """TF's stock ops everywhere: 3D convs, 3D max pools (on CPU with the 2D pools' gradient) and
  Keras' batch norm."""
  monkeypatch.setattr(FusedBatchNormalization, "call", keras.layers.BatchNormalization.call)
  return use_policy(FormulationPolicy(mode="3d"))


@pytest.mark.parametrize("training", [False, True])
@pytest.mark.parametrize("variant", ["slim", "torchvision"])
def test_s3dg_endpoints_equal_those_of_tf_3d_ops(variant, training, monkeypatch):
  keras.utils.set_random_seed(0)
  backbone = S3DGBackbone(depth_multiplier=0.125, variant=variant)
  x = tf.random.stateless_uniform((2, 8, 32, 32, 3), (1, 2), -1.0, 1.0)
  with use_policy(FRAME_OPS):
    fast = tf.function(lambda: backbone(x, training=training))()
  with _use_tf_3d_ops(monkeypatch):
    stock = tf.function(lambda: backbone(x, training=training))()
  # In training, batch norm over the 2 to 16 values per channel of the last blocks' maps (a 32-px
  # clip) amplifies rounding without bound: compare those in inference only.
  names = ENDPOINTS[:ENDPOINTS.index("Mixed_3c") + 1] if training else ENDPOINTS
  for name in names:
    scale = float(np.abs(stock[name]).max()) + 1e-12
    np.testing.assert_allclose(fast[name] / scale, stock[name] / scale, atol=1e-4, err_msg=name)


@pytest.mark.parametrize("variant", ["slim", "torchvision"])
def test_s3dg_training_gradients_equal_those_of_tf_3d_ops(variant, monkeypatch):
  """The network up to its second max pool, whose inputs hold no tied maxima but a ReLU's zeros.

  Deeper, a max pool sees the equal values an earlier overlapping pool copied: rounding then
  decides which of them takes the gradient, in any two formulations (and TF's 3D pool feeds all).
  """
  keras.utils.set_random_seed(0)
  backbone = S3DGBackbone(depth_multiplier=0.125, variant=variant, final_endpoint="Conv2d_2c_3x3")
  x = tf.random.stateless_uniform((2, 8, 32, 32, 3), (1, 2), -1.0, 1.0)
  probe = tf.random.stateless_normal((2, 4, 8, 8, 24), (3, 4))

  def grads():
    with tf.GradientTape() as tape:
      loss = tf.reduce_sum(backbone(x, training=True)["Conv2d_2c_3x3"] * probe)
    return tape.gradient(loss, backbone.trainable_weights)

  state = [w.numpy() for w in backbone.non_trainable_weights]
  with use_policy(FRAME_OPS):
    fast = tf.function(grads)()
  for w, value in zip(backbone.non_trainable_weights, state):
    w.assign(value)  # Both passes start from the same batch-norm statistics.
  with _use_tf_3d_ops(monkeypatch):
    stock = tf.function(grads)()
  for weight, a, b in zip(backbone.trainable_weights, fast, stock):
    scale = float(np.abs(b).max()) + 1e-12
    np.testing.assert_allclose(a / scale, b / scale, atol=1e-3, err_msg=weight.path)


@pytest.mark.parametrize("gradient_dtype", ["float32", "bfloat16"])
def test_bfloat16_conv_gradients_are_close_to_float32(gradient_dtype):
  rng = np.random.RandomState(4)
  x = tf.constant(rng.rand(2, 6, 10, 10, 4).astype("float32"))
  kernel = tf.constant(rng.randn(3, 3, 3, 4, 5).astype("float32") * 0.1)

  def grads(dtype):
    xs, ks = tf.cast(x, dtype), tf.cast(kernel, dtype)
    with tf.GradientTape() as tape:
      tape.watch([xs, ks])
      loss = tf.reduce_sum(tf.cast(conv3d_as_conv2d(xs, ks, (1, 2, 2), "SAME"), tf.float32))
    return [tf.cast(g, tf.float32) for g in tape.gradient(loss, [xs, ks])]

  with use_policy(FormulationPolicy(mode="2d", bf16_conv_gradient=gradient_dtype)):
    pairs = list(zip(grads(tf.bfloat16), grads(tf.float32)))
  for bf16, fp32 in pairs:
    assert bf16.dtype == tf.float32
    np.testing.assert_allclose(bf16, fp32, rtol=0.02, atol=0.05 * float(np.abs(fp32).max()))


def _backprop_dtypes(gradient_dtype):
  """The dtypes TF's Conv2D backprop ops run in for a bfloat16 conv's gradient."""
  x = tf.zeros((1, 4, 8, 8, 3), tf.bfloat16)
  kernel = tf.zeros((1, 3, 3, 3, 4), tf.bfloat16)

  def grads(v, w):
    with tf.GradientTape() as tape:
      tape.watch([v, w])
      y = frame_ops.conv3d(v, w, (1, 1, 1), "SAME", "2d")
    return tape.gradient(y, [v, w])

  graph = tf.function(grads).get_concrete_function(x, kernel).graph
  return {op.get_attr("T").name for op in graph.get_operations()
          if op.type in ("Conv2DBackpropInput", "Conv2DBackpropFilter")}


def test_bfloat16_conv_gradient_dtype_follows_the_policy():
  with use_policy(FormulationPolicy(mode="2d", bf16_conv_gradient="bfloat16")):
    assert _backprop_dtypes(None) == {"bfloat16"}
  with use_policy(FormulationPolicy(mode="2d")):  # Forced formulation: float32, nothing timed.
    assert _backprop_dtypes(None) == {"float32"}


def test_bfloat16_conv_gradient_is_measured_once_and_cached(tmp_path):
  calls = []

  def timer():
    calls.append(1)
    return {"float32": 2.0, "bfloat16": 1.0}

  path = str(tmp_path / "c.json")
  policy = FormulationPolicy(mode="auto", cache_file=path, timer=_no_timer, gradient_timer=timer)
  assert policy.conv_gradient_dtype() == policy.conv_gradient_dtype() == "bfloat16"
  assert len(calls) == 1
  entry = json.loads(open(path).read())["choices"][frame_ops_policy.GRADIENT_KEY]
  assert entry == {"training": "bfloat16", "seconds": {"float32": 2.0, "bfloat16": 1.0}}
  never = lambda: pytest.fail("timed again")
  assert FormulationPolicy(cache_file=path, gradient_timer=never).conv_gradient_dtype() == "bfloat16"
  slow_bf16 = lambda: {"float32": 1.0, "bfloat16": 10.0}
  assert FormulationPolicy(gradient_timer=slow_bf16).conv_gradient_dtype() == "float32"
  # Forced by the field (or env var), and on GPU, nothing is timed.
  assert FormulationPolicy(bf16_conv_gradient="float32", gradient_timer=never
                           ).conv_gradient_dtype() == "float32"
  assert FormulationPolicy(device="gpu", gradient_timer=never).conv_gradient_dtype() == "bfloat16"


def test_bfloat16_conv_gradient_env_var(monkeypatch, tmp_path):
  monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
  monkeypatch.setenv("D3D_TF_BF16_CONV_GRADIENT", "BFloat16")
  assert frame_ops_policy.policy_from_env().bf16_conv_gradient == "bfloat16"
  monkeypatch.setenv("D3D_TF_BF16_CONV_GRADIENT", "half")
  with pytest.raises(ValueError, match="D3D_TF_BF16_CONV_GRADIENT .* auto, float32, bfloat16"):
    frame_ops_policy.policy_from_env()


# --- The formulation policy: no test times anything (a fake timer stands in for `measure`). ---

CONV_1X1 = OpShape("conv", (1, 1, 1), (1, 1, 1), "SAME", 64, 32)
CONV_1X3 = OpShape("conv", (1, 3, 3), (1, 1, 1), "SAME", 32, 48)
POOL = OpShape("pool", (3, 3, 3), (1, 1, 1), "SAME", 16)


class FakeTimer:
  """Seconds by layer type: 3D faster for pointwise convs and pools, 2D for spatial convs;
  training prefers the other formulation of pools. Counts its calls."""

  def __init__(self):
    self.calls = []

  def __call__(self, op):
    self.calls.append(op.key())
    fast_3d = op.kind == "pool" or op.window == (1, 1, 1)
    fast_3d_training = fast_3d and op.kind != "pool"
    seconds = lambda faster: (2.0, 1.0) if faster else (1.0, 2.0)
    (i2, i3), (t2, t3) = seconds(fast_3d), seconds(fast_3d_training)
    return {"inference_2d": i2, "inference_3d": i3, "training_2d": t2, "training_3d": t3}


def _no_timer(op):
  raise AssertionError(f"{op.key()} was timed")


def test_auto_picks_per_layer_type_and_mode_and_times_each_type_once(tmp_path):
  timer = FakeTimer()
  policy = FormulationPolicy(mode="auto", cache_file=str(tmp_path / "c.json"), timer=timer)
  assert policy.formulation(CONV_1X1) == "3d"
  assert policy.formulation(CONV_1X1, training=True) == "3d"
  assert policy.formulation(CONV_1X3) == "2d"
  assert policy.formulation(POOL) == "3d"
  assert policy.formulation(POOL, training=True) == "2d"
  # Another pointwise conv (other channels) is the same layer type: no new timing.
  assert policy.formulation(OpShape("conv", (1, 1, 1), (1, 1, 1), "SAME", 832, 384)) == "3d"
  assert sorted(timer.calls) == sorted([CONV_1X1.key(), CONV_1X3.key(), POOL.key()])
  assert CONV_1X1.key() == "conv:1x1x1/s1x1x1/SAME/float32"
  assert OpShape("conv", (1, 1, 1), (1, 1, 1), "SAME", 64, 32, "bfloat16").key() != CONV_1X1.key()


def test_2d_is_chosen_only_when_clearly_faster():
  """Within the margin TF's 3D op wins: per-op timings repeat to a few percent only."""
  def timer(ratio):
    return lambda op: {"inference_2d": ratio, "inference_3d": 1.0,
                       "training_2d": ratio, "training_3d": 1.0}

  margin = frame_ops_policy.TWO_D_MARGIN
  assert 0.8 <= margin < 1.0
  for ratio, expected in ((0.5, "2d"), (margin, "2d"), (margin + 0.02, "3d"), (0.99, "3d"),
                          (1.5, "3d")):
    policy = FormulationPolicy(mode="auto", timer=timer(ratio))
    assert policy.formulation(CONV_1X3) == policy.formulation(POOL, True) == expected, ratio


def test_cache_file_round_trip(tmp_path):
  path = tmp_path / "sub" / "frame_ops.json"
  first = FormulationPolicy(mode="auto", cache_file=str(path), timer=FakeTimer())
  first.formulation(CONV_1X3)
  first.formulation(POOL)
  data = json.loads(path.read_text())
  assert data["cpu"] == frame_ops_policy.cpu_model()
  assert data["tensorflow"] == tf.__version__
  assert data["choices"][CONV_1X3.key()]["inference"] == "2d"
  assert data["choices"][POOL.key()]["training"] == "2d"
  assert data["choices"][POOL.key()]["seconds"]["inference_3d"] == 1.0
  # A new process (policy) reads the choices back and times nothing it has.
  second = FormulationPolicy(mode="auto", cache_file=str(path), timer=_no_timer)
  assert second.formulation(CONV_1X3) == "2d"
  assert (second.formulation(POOL), second.formulation(POOL, training=True)) == ("3d", "2d")
  # A corrupt cache is measured again and rewritten.
  path.write_text("{not json")
  timer = FakeTimer()
  assert FormulationPolicy(cache_file=str(path), timer=timer).formulation(POOL) == "3d"
  assert timer.calls == [POOL.key()]
  assert POOL.key() in json.loads(path.read_text())["choices"]


def test_cache_file_is_per_cpu_model_and_tf_version(tmp_path):
  paths = {frame_ops_policy.cache_path(str(tmp_path), cpu, version)
           for cpu in ("AMD EPYC 9B45", "Intel(R) Xeon(R)") for version in ("2.21.0", "2.22.0")}
  assert len(paths) == 4
  assert all(os.path.dirname(p) == str(tmp_path) for p in paths)


@pytest.mark.parametrize("forced", ["2d", "3d"])
def test_env_var_and_option_force_a_formulation_without_timing(forced, monkeypatch, tmp_path):
  monkeypatch.setenv("D3D_TF_FRAME_OPS", forced.upper())
  monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
  policy = frame_ops_policy.policy_from_env()
  assert policy.mode == forced
  assert policy.cache_file.startswith(str(tmp_path / "d3d_tf"))
  policy.timer = _no_timer
  assert {policy.formulation(op, t) for op in (CONV_1X1, POOL) for t in (False, True)} == {forced}
  other = "3d" if forced == "2d" else "2d"
  assert frame_ops_policy.policy_from_env(mode=other).mode == other  # The option wins.
  monkeypatch.setenv("D3D_TF_FRAME_OPS", "fast")
  with pytest.raises(ValueError, match="D3D_TF_FRAME_OPS .* auto, 2d, 3d"):
    frame_ops_policy.policy_from_env()


def test_gpu_keeps_3d_ops_without_timing():
  policy = FormulationPolicy(mode="auto", device="gpu", timer=_no_timer)
  assert policy.formulation(CONV_1X3) == policy.formulation(POOL, True) == "3d"
  assert FormulationPolicy(mode="2d", device="gpu").formulation(CONV_1X3) == "2d"


def _op_types(fn, *args):
  return {op.type for op in fn.get_concrete_function(*args).graph.get_operations()}


def test_traced_s3dg_follows_the_per_type_choices():
  keras.utils.set_random_seed(0)
  backbone = S3DGBackbone(depth_multiplier=0.125, final_endpoint="Mixed_3b")
  x = tf.random.stateless_uniform((1, 8, 32, 32, 3), (1, 2), -1.0, 1.0)
  infer = tf.function(lambda v: backbone(v, training=False)["Mixed_3b"])
  with use_policy(FormulationPolicy(mode="auto", timer=FakeTimer())):
    mixed = _op_types(infer, x)
    measured = infer(x)
  # Pointwise convs and (in inference) pools as TF's 3D ops, the other convs as Conv2D.
  assert {"Conv2D", "Conv3D", "MaxPool3D"} <= mixed and "MaxPool" not in mixed
  with use_policy(FRAME_OPS):
    assert "Conv3D" not in _op_types(tf.function(lambda v: backbone(v)["Mixed_3b"]), x)
    frames = backbone(x, training=False)["Mixed_3b"]
  np.testing.assert_allclose(measured, frames, rtol=1e-4, atol=1e-4)
