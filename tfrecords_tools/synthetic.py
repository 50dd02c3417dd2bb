"""A synthetic action dataset whose class lives in the motion only, never in a single frame.

Each clip shows one textured "actor" moving by its class's pattern, over a randomly coloured
textured background, with smaller drifting distractors, camera jitter and sensor noise. What a
single frame shows is drawn from the same distribution for every class: actor and distractor
textures and shapes, positions (uniform, as the scene wraps around like a torus), orientation
(uniform) and size (log-uniform: expansion and contraction wrap around the same size range, as
moving objects wrap around the frame). So an appearance model is at chance, while flow, or an
RGB 3D CNN that learns motion, is not: the setting in which D3D's claim (distilling flow into an
RGB network helps) can be tested.

Classes (speeds are for 64-pixel frames and scale with the frame size; `ClipSpec.speed`
multiplies every rate, and divides the shaking period, by the same factor):
  move_right/left/up/down   translate 1.2-2.2 px/frame
  rotate_cw/rotate_ccw      spin 8-14 degrees/frame about the actor's centre
  expand/contract           scale by exp(+-0.06..0.09) per frame, sizes 0.6-1.6x on a loop
  shake_horizontal/vertical oscillate with amplitude 4-7 px and period 6-10 frames

`ClipSpec.appearance_shortcut` (P > 0) breaks the "no single frame tells the class" rule on
purpose, in the training splits only (train and unlabelled): there the actor wears its class's palette (two fixed
colours per class, `PALETTES`) with probability P; in val and test it wears, with the same
probability, the palette of a class drawn independently of its own. Every split then shows the
same appearances; only in training do they predict the class (a shortcut an RGB network can
learn and a flow network cannot see). With P = 0 (the default) clips are rendered exactly as
before, byte for byte.
"""

import concurrent.futures
import dataclasses
import multiprocessing
import os
import shutil
import sys
import time
from typing import List, Tuple

import av
import cv2
import numpy as np

from d3d_tf.common import progress
from tfrecords_tools import convert_lib
from tfrecords_tools import layouts

CLASSES = ("move_right", "move_left", "move_up", "move_down", "rotate_cw", "rotate_ccw",
           "expand", "contract", "shake_horizontal", "shake_vertical")
SPLIT_CODES = {"train": 0, "val": 1, "test": 2, "unlabelled": 3}


@dataclasses.dataclass(frozen=True)
class ClipSpec:
  """Everything that identifies one clip; the same spec always renders the same pixels."""
  seed: int
  split: str
  class_index: int
  index: int
  size: int = 64
  min_length: int = 16
  max_length: int = 24
  clutter: bool = True  # Distractors, camera shake, sensor noise, grainy background.
  # Multiplies the actor's radius: a larger actor puts more of the frame in motion.
  actor_scale: float = 1.0
  # Multiplies every class's rate of motion (pixels, degrees or log-scale per frame).
  speed: float = 1.0
  # Probability that the actor wears a palette (the module docstring says which one).
  appearance_shortcut: float = 0.0

  def rng(self) -> np.random.Generator:
    # Seeded by the clip's identity, not by generation order, so workers can run in any order.
    return np.random.default_rng(
        [self.seed, SPLIT_CODES[self.split], self.class_index, self.index])


def _palette(class_index: int) -> np.ndarray:
  """Class `class_index`'s two actor colours: a saturated hue (36 degrees apart per class) and a
  dark shade of it, about 180 apart, so the texture keeps the contrast `_distinct_colours` gives."""
  hue = np.uint8(round(class_index * 180 / len(CLASSES)))  # OpenCV hues run 0..179.
  hsv = np.array([[[hue, 255, 255], [hue, 255, 80]]], np.uint8)
  return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0].astype(np.float32)


PALETTES = tuple(_palette(k) for k in range(len(CLASSES)))


def actor_palette(spec: "ClipSpec"):
  """The class whose palette the actor of `spec` wears, or None (random colours as usual).

  Drawn from its own generator (the clip's identity plus a tag), so the clip's other draws,
  and with them its motion, position and texture pattern, are those of the clip without it.
  """
  if spec.appearance_shortcut <= 0:
    return None
  rng = np.random.default_rng(
      [spec.seed, SPLIT_CODES[spec.split], spec.class_index, spec.index, 0x5C07])
  if rng.uniform() >= spec.appearance_shortcut:
    return None
  if spec.split in ("train", "unlabelled"):  # Both are training clips.
    return spec.class_index
  return int(rng.integers(len(CLASSES)))  # Independent of the clip's class.


def _distinct_colours(rng: np.random.Generator, avoid: np.ndarray = None) -> np.ndarray:
  """Two RGB colours at least 100 apart, both at least 80 from `avoid` (the background's mean),
  so textures have contrast and actors stand out, whatever their class."""
  while True:
    colours = rng.uniform(0, 255, size=(2, 3)).astype(np.float32)
    if np.linalg.norm(colours[0] - colours[1]) < 100:
      continue
    if avoid is None or np.linalg.norm(colours - avoid, axis=1).min() >= 80:
      return colours


def _resize_periodic(grid: np.ndarray, height: int, width: int) -> np.ndarray:
  """Upsamples a grid as if it tiled the plane, so the result wraps around without a seam."""
  rows, cols = grid.shape[:2]
  tiled = np.tile(grid, (3, 3) + (1,) * (grid.ndim - 2))
  big = cv2.resize(tiled, (3 * width, 3 * height), interpolation=cv2.INTER_CUBIC)
  return big[height:2 * height, width:2 * width].reshape((height, width) + grid.shape[2:])


def _texture(rng: np.random.Generator, height: int, width: int, cells: int,
             avoid: np.ndarray = None, sharp: bool = False,
             colours: np.ndarray = None) -> np.ndarray:
  """Float RGB in 0..255 that wraps around seamlessly: two random colours mixed by a field of
  `cells` x `cells` blotches, plus fine grain that gives optical flow something to lock on to.

  `sharp` blotches (a blurred random checkerboard) make rotation and scaling of an object
  visible; soft ones suit backgrounds. Given `colours` replace the drawn ones (which are still
  drawn, so every later draw is as without them).
  """
  drawn = _distinct_colours(rng, avoid)
  colours = drawn if colours is None else colours
  if sharp:
    field = rng.integers(0, 2, size=(cells, cells)).astype(np.float32)
  else:
    field = rng.uniform(0, 1, size=(cells, cells)).astype(np.float32)
  field = np.clip(_resize_periodic(field, height, width), 0, 1)[..., None]
  image = colours[0] * (1 - field) + colours[1] * field
  grain = rng.normal(0, 18, size=(height // 2, width // 2)).astype(np.float32)
  image += _resize_periodic(grain, height, width)[..., None]
  return np.clip(image, 0, 255)


def _shape_mask(rng: np.random.Generator, side: int) -> np.ndarray:
  """A filled disc, square or diamond on a `side` x `side` float canvas, drawn supersampled."""
  big = np.zeros((side * 4, side * 4), np.uint8)
  c, r = side * 2, side * 2 - 4
  kind = rng.integers(3)
  if kind == 0:
    cv2.circle(big, (c, c), r, 255, -1)
  elif kind == 1:
    cv2.rectangle(big, (c - r * 3 // 4, c - r * 3 // 4), (c + r * 3 // 4, c + r * 3 // 4), 255, -1)
  else:
    cv2.fillConvexPoly(big, np.array([[c, c - r], [c + r, c], [c, c + r], [c - r, c]]), 255)
  return cv2.resize(big, (side, side), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0


@dataclasses.dataclass
class _Sprite:
  texture: np.ndarray  # float32 [side, side, 3]
  mask: np.ndarray     # float32 [side, side]
  radius: float        # Pixels at scale 1.


def _sprite(rng: np.random.Generator, radius: float, background: np.ndarray,
            colours: np.ndarray = None) -> _Sprite:
  side = int(np.ceil(radius * 2)) + 2
  texture = _texture(rng, side, side, int(rng.integers(3, 6)), background.mean(axis=(0, 1)),
                     sharp=True, colours=colours)
  return _Sprite(texture, _shape_mask(rng, side), radius)


def _paste(canvas: np.ndarray, sprite: _Sprite, centre: np.ndarray, angle: float,
           scale: float) -> None:
  """Draws `sprite` into `canvas` in place, wrapping around its edges (the scene is a torus)."""
  height, width = canvas.shape[:2]
  side = sprite.mask.shape[0]
  centre = np.mod(centre, (width, height))
  reach = sprite.radius * scale * 1.5 + 2
  for dx in (-width, 0, width):
    for dy in (-height, 0, height):
      x, y = centre[0] + dx, centre[1] + dy
      if x + reach < 0 or x - reach > width or y + reach < 0 or y - reach > height:
        continue
      matrix = cv2.getRotationMatrix2D(((side - 1) / 2, (side - 1) / 2), angle, scale)
      matrix[:, 2] += (x - (side - 1) / 2, y - (side - 1) / 2)
      colour = cv2.warpAffine(sprite.texture, matrix, (width, height), flags=cv2.INTER_LINEAR)
      alpha = cv2.warpAffine(sprite.mask, matrix, (width, height), flags=cv2.INTER_LINEAR)
      alpha = alpha[..., None]
      canvas *= 1 - alpha
      canvas += colour * alpha


# The actor's size lives on a loop like its position: log-scale wraps around this range, so a
# single frame's size is log-uniform in every class and expansion can be as fast as translation.
LOG_SCALE_RANGE = (np.log(0.6), np.log(1.6))


def _actor_motion(rng: np.random.Generator, class_name: str, length: int, unit: float,
                  speed: float = 1.0):
  """Per-frame (centre offset [T, 2], angle [T] degrees, log-scale [T]) of the actor."""
  t = np.arange(length, dtype=np.float64) * speed
  offset = np.zeros((length, 2))
  angle = rng.uniform(0, 360) + np.zeros(length)
  low, high = LOG_SCALE_RANGE
  log_scale = np.full(length, rng.uniform(low, high))
  directions = {"move_right": (1, 0), "move_left": (-1, 0), "move_up": (0, -1),
                "move_down": (0, 1)}
  if class_name in directions:
    offset = np.outer(t, directions[class_name]) * rng.uniform(1.2, 2.2) * unit
  elif class_name in ("rotate_cw", "rotate_ccw"):
    # OpenCV angles are counter-clockwise on screen.
    sense = -1.0 if class_name == "rotate_cw" else 1.0
    angle = angle + sense * rng.uniform(8, 14) * t
  elif class_name in ("expand", "contract"):
    sense = 1.0 if class_name == "expand" else -1.0
    log_scale = low + np.mod(log_scale - low + sense * rng.uniform(0.06, 0.09) * t, high - low)
  elif class_name in ("shake_horizontal", "shake_vertical"):
    axis = (1, 0) if class_name == "shake_horizontal" else (0, 1)
    wave = np.sin(2 * np.pi * t / rng.uniform(6, 10) + rng.uniform(0, 2 * np.pi))
    offset = np.outer(wave, axis) * rng.uniform(4, 7) * unit
  else:
    raise ValueError(f"Unknown class {class_name!r}; expected one of {CLASSES}.")
  return offset, angle, log_scale


def render_clip(spec: ClipSpec) -> np.ndarray:
  """The clip of `spec` as uint8 RGB frames [T, size, size, 3].

  The scene is a torus exactly the size of the frame: what leaves one edge comes back at the
  opposite one and the camera shake wraps too, so every position is equally likely in every
  class and the whole scene is always in view.
  """
  rng = spec.rng()
  size, unit = spec.size, spec.size / 64.0
  length = int(rng.integers(spec.min_length, spec.max_length + 1))
  background = _texture(rng, size, size, cells=int(rng.integers(3, 8)))
  if not spec.clutter:  # A smooth background: the actor's edges are the only moving texture.
    tiled = cv2.GaussianBlur(np.tile(background, (3, 3, 1)), (0, 0), 2.0 * unit)
    background = np.ascontiguousarray(tiled[size:2 * size, size:2 * size])

  palette = actor_palette(spec)
  actor = _sprite(rng, rng.uniform(12, 16) * unit * spec.actor_scale, background,
                  None if palette is None else PALETTES[palette])
  offset, angle, log_scale = _actor_motion(rng, CLASSES[spec.class_index], length, unit,
                                           spec.speed)
  actor_centre = rng.uniform(0, size, size=2)
  # Distractors drift slowly in random directions; they share the actor's appearance model.
  distractors = []
  for _ in range(int(rng.integers(1, 4)) if spec.clutter else 0):
    sprite = _sprite(rng, rng.uniform(4, 7) * unit, background)
    velocity = rng.normal(0, 0.4 * unit, size=2)
    spin = rng.normal(0, 2.0)
    distractors.append((sprite, rng.uniform(0, size, size=2), velocity,
                        rng.uniform(0, 360), spin))
  actor_layer = int(rng.integers(len(distractors) + 1))
  # Camera shake: a random walk, so consecutive frames move by a fraction of a pixel.
  jitter = np.cumsum(rng.normal(0, 0.3 * unit, size=(length, 2)), axis=0)
  noise_sigma = rng.uniform(2, 5)
  if not spec.clutter:
    jitter, noise_sigma = np.zeros_like(jitter), 1.0

  frames = np.empty((length, size, size, 3), np.uint8)
  for i in range(length):
    canvas = background.copy()
    for layer in range(len(distractors) + 1):
      if layer == actor_layer:
        _paste(canvas, actor, actor_centre + offset[i], angle[i], float(np.exp(log_scale[i])))
      if layer < len(distractors):
        sprite, centre, velocity, start_angle, spin = distractors[layer]
        _paste(canvas, sprite, centre + velocity * i, start_angle + spin * i, 1.0)
    shift = np.float32([[1, 0, jitter[i, 0]], [0, 1, jitter[i, 1]]])
    frame = cv2.warpAffine(canvas, shift, (size, size), flags=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_WRAP)
    frame += rng.normal(0, noise_sigma, size=frame.shape).astype(np.float32)
    frames[i] = np.clip(np.round(frame), 0, 255).astype(np.uint8)
  return frames


def video_codec() -> Tuple[str, dict]:
  """Lossless libx264 when FFmpeg has it (PyAV's wheels do), else MPEG-4 part 2 at its best.

  Lossless, because lossy x264 is not reproducible here: its decisions depend on what the
  process encoded before (measured: 39 of 60 clips decoded differently at crf 10 when encoded
  in the reverse order, one thread each time). Lossless makes the decoded frames exact whatever
  the encoder decides, so one seed gives one dataset, and so one results table.
  """
  if "libx264" in av.codecs_available:
    return "libx264", {"qp": "0", "preset": "fast", "threads": "1"}
  return "mpeg4", {"qscale": "2", "threads": "1"}


def write_mp4(path: str, frames: np.ndarray, fps: int = 25) -> None:
  """Writes uint8 RGB frames [T, H, W, 3] (even H and W) as an mp4, atomically."""
  codec, options = video_codec()
  tmp = path + ".tmp.mp4"
  with av.open(tmp, "w") as container:
    stream = container.add_stream(codec, rate=fps, options=options)
    stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
    for frame in frames:
      for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
        container.mux(packet)
    for packet in stream.encode():
      container.mux(packet)
  os.replace(tmp, path)


def clip_path(videos_dir: str, spec: ClipSpec) -> str:
  name = CLASSES[spec.class_index]
  return os.path.join(videos_dir, spec.split, name, f"{name}_{spec.index:04d}.mp4")


def write_clip(args: Tuple[str, ClipSpec, int]) -> str:
  """Renders and writes one clip; a top-level function so worker processes can run it."""
  videos_dir, spec, fps = args
  path = clip_path(videos_dir, spec)
  write_mp4(path, render_clip(spec), fps)
  return path


def clip_specs(seed: int, counts: dict, size: int, min_length: int, max_length: int,
               clutter: bool = True, actor_scale: float = 1.0,
               speed: float = 1.0, appearance_shortcut: float = 0.0) -> List[ClipSpec]:
  """Specs of every clip: `counts` maps split -> clips per class."""
  return [ClipSpec(seed, split, class_index, index, size, min_length, max_length, clutter,
                   actor_scale, speed, appearance_shortcut)
          for split, per_class in counts.items()
          for class_index in range(len(CLASSES))
          for index in range(per_class)]


def write_videos(videos_dir: str, specs: List[ClipSpec], fps: int = 25,
                 workers: int = 1, show_progress: bool = True, stream=None) -> List[str]:
  """Renders every spec to `<videos_dir>/<split>/<class>/<class>_NNNN.mp4`; returns the paths.

  Earlier .mp4 files in those class folders that `specs` does not name are removed, so the
  folder layout never picks up clips of a previous, larger run. Rendering takes a while (about
  a minute for the quickstart's clips), so `show_progress` counts clips on `stream` (stderr).
  """
  wanted = {clip_path(videos_dir, spec) for spec in specs}
  for path in wanted:
    os.makedirs(os.path.dirname(path), exist_ok=True)
  for split in SPLIT_CODES:
    for name in CLASSES:
      folder = os.path.join(videos_dir, split, name)
      if os.path.isdir(folder):
        for file_name in os.listdir(folder):
          path = os.path.join(folder, file_name)
          if file_name.endswith(".mp4") and path not in wanted:
            os.remove(path)
  tasks = [(videos_dir, spec, fps) for spec in specs]
  with progress.ProgressBar(total=len(tasks), unit="clips", desc="rendering", stream=stream,
                            disable=not show_progress) as bar:
    if workers <= 1:
      return [_counted(write_clip(task), bar) for task in tasks]
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context) as executor:
      return [_counted(path, bar) for path in executor.map(write_clip, tasks, chunksize=8)]


def _counted(path: str, bar: progress.ProgressBar) -> str:
  bar.update()
  return path


def convert_clips(videos_dir: str, records_dir: str, size: int, flow: str = "dis",
                  workers: int = 1, num_shards: int = 0, flow_timing: bool = False) -> dict:
  """Runs the real converter on the clips, from scratch: records are derived data, and resuming
  over clips of another seed would keep stale shards. Returns the converter's summary.

  `flow_timing` False stores flow/seconds as 0, making the records byte-identical per seed.
  """
  if os.path.isdir(os.path.join(records_dir, convert_lib.STATE_DIR)):
    shutil.rmtree(records_dir)
  dataset = layouts.parse_folder(videos_dir)
  # short_side = size keeps the frames as rendered.
  options = convert_lib.EncodeOptions(short_side=size, flow=flow, jpeg_quality=95,
                                      flow_timing=flow_timing)
  return convert_lib.convert(dataset, records_dir, options, num_shards=num_shards,
                             workers=workers)


def make_dataset(config) -> int:
  """Renders the clips `config` (a `SyntheticConfig`) describes into <output_dir>/videos and,
  with `config.convert`, converts them into <output_dir>/records. Returns the exit status: 0,
  or 1 when no clip converted."""
  config.validate()
  videos_dir = os.path.join(config.output_dir, "videos")
  specs = clip_specs(config.seed, config.clips_per_class(), config.size, config.min_length,
                     config.max_length, config.clutter, config.actor_scale, config.speed,
                     config.appearance_shortcut)
  start = time.perf_counter()
  write_videos(videos_dir, specs, config.fps, config.workers)
  print(f"make_synthetic: wrote {len(specs)} clips of {len(CLASSES)} classes to {videos_dir} "
        f"in {time.perf_counter() - start:.1f} s", file=sys.stderr)
  if not config.convert:
    return 0
  summary = convert_clips(videos_dir, os.path.join(config.output_dir, "records"), config.size,
                          config.flow, config.workers, config.num_shards, config.flow_timing)
  print(f"make_synthetic: converted {summary['converted']} clips ({summary['failed']} failed) "
        f"with {config.flow} flow; {time.perf_counter() - start:.1f} s in all", file=sys.stderr)
  return 0 if summary["converted"] else 1
