"""Synthetic referring scenes: coloured shapes on a plain background, one expression each.

`SyntheticScenes(num_samples, seed)` is a deterministic random-access source of
`RefSample`s: sample `i` depends only on `(seed, i)` (`np.random.default_rng([seed, i])`),
so grain workers and restarts reproduce it. It is the in-memory data of the training
tests and the domain of the small bundled ARGenSeg model.

Scene (lengths are for a 128 px canvas and scale with `size`; x grows to the right, y
downwards; an object's position is the centre of its bounding box):
- background: a light (each channel in [160, 250]) or dark ([5, 70]) colour, solid or
  with smooth noise (+-12 levels, bilinear from a 5x5 grid), each with probability 1/2;
  redrawn (at most 20 times, then a grey of 240 / 15) while it is within RGB distance
  100 (plus the noise) of any object shade;
- 2-6 objects placed uniformly among the free positions, bounding boxes >= 3 px apart
  (an object with no free position is dropped; the first two always fit). Each has a
  shape `circle | square | triangle` (apex up, base = height), a colour
  `red | green | blue | yellow` (RGB times a shade factor in [0.85, 1.15]) and a size
  `small` (side 10-18 px) or `big` (26-40 px).

Grammar. A sample is a no-target one with probability `no_target_fraction`; then a
template of that family is drawn uniformly among those with a candidate in the scene
(the layout is redrawn when none has), then a candidate uniformly. With margin m = 10 px
and a "clear extreme" meaning the object whose centre is >= m beyond every other
group member's along the axis:

  template                   expression                    when / target
  colour_shape               the <colour> <shape>          exactly one such object
  size_colour_shape          the <size> <colour> <shape>   exactly one such object
  shape_relative             the <shape> <where>           exactly two <shape>s, a clear extreme
  colour_relative            the <colour> shape <where>    exactly two <colour> objects, idem
  shape_superlative          the <most> <shape>            >= 2 <shape>s, a clear extreme
  colour_all                 all <colour> shapes           >= 2 <colour> objects: all of them
  absent_colour_shape        the <colour> <shape>          no <colour> <shape>: all-False mask
  absent_size_colour_shape   the <size> <colour> <shape>   no <colour> <shape> of any size: idem

  <where> = on the left | on the right | at the top | at the bottom
  <most>  = leftmost | rightmost | topmost | bottommost

Every expression therefore has exactly one correct mask (the union of its targets). New
templates are functions `(objects, margin) -> [(text, target indices)]` added to
`TARGET_TEMPLATES` or `NO_TARGET_TEMPLATES`; new shapes are entries of `FOOTPRINTS`.
"""

import dataclasses
import functools
import json
import math
from collections.abc import Callable, Sequence

import numpy as np
from etils import epath

from argenseg_jax import image_io, user_input
from argenseg_jax.ref_sample import RefSample

REFERENCE_SIZE = 128  # the pixel lengths below are for this canvas size
COLOURS = {'red': (220, 40, 40), 'green': (40, 180, 60), 'blue': (40, 80, 220),
           'yellow': (230, 210, 40)}
SIZES = {'small': (10, 18), 'big': (26, 40)}
SHADE_JITTER = 0.15
GAP = 3
MARGIN = 10
BACKGROUND_TONES = {'light': (160, 250), 'dark': (5, 70)}  # channel range
FALLBACK_GREYS = {'light': 240, 'dark': 15}  # when no drawn colour has enough contrast
NOISE_AMPLITUDE = 12
MIN_CONTRAST = 100
MAX_BACKGROUND_TRIES = 20
MAX_LAYOUT_TRIES = 20
WHERE = {'on the left': (0, -1), 'on the right': (0, 1), 'at the top': (1, -1),
         'at the bottom': (1, 1)}  # phrase -> (axis, sign): the target maximises sign * centre
MOST = {'leftmost': (0, -1), 'rightmost': (0, 1), 'topmost': (1, -1), 'bottommost': (1, 1)}


def _circle(x: np.ndarray, y: np.ndarray, half: float) -> np.ndarray:
  return (x - half) ** 2 + (y - half) ** 2 <= half ** 2


def _square(x: np.ndarray, y: np.ndarray, half: float) -> np.ndarray:
  del half
  return np.ones(x.shape, bool)


def _triangle(x: np.ndarray, y: np.ndarray, half: float) -> np.ndarray:
  return np.abs(x - half) <= y / 2


# shape -> pixel test on pixel centres `(x, y)` of a `2 * half` square box.
FOOTPRINTS: dict[str, Callable[[np.ndarray, np.ndarray, float], np.ndarray]] = {
    'circle': _circle, 'square': _square, 'triangle': _triangle}
SHAPES = tuple(FOOTPRINTS)


@functools.lru_cache(maxsize=None)
def footprint(shape: str, side: int) -> np.ndarray:
  """Read-only bool `[side, side]`: the pixels of `shape` inside its bounding box."""
  y, x = np.mgrid[:side, :side] + 0.5
  mask = FOOTPRINTS[shape](x, y, side / 2)
  mask.setflags(write=False)
  return mask


@dataclasses.dataclass(frozen=True)
class SceneObject:
  """One shape; `bbox` is `(x0, y0, x1, y1)` in pixels, ends exclusive."""
  shape: str
  colour: str
  size: str
  bbox: tuple[int, int, int, int]
  rgb: tuple[int, int, int]

  @property
  def centre(self) -> tuple[float, float]:
    x0, y0, x1, y1 = self.bbox
    return (x0 + x1) / 2, (y0 + y1) / 2

  @property
  def region(self) -> tuple[slice, slice]:
    x0, y0, x1, y1 = self.bbox
    return slice(y0, y1), slice(x0, x1)

  def footprint(self) -> np.ndarray:
    return footprint(self.shape, self.bbox[2] - self.bbox[0])


@dataclasses.dataclass(frozen=True)
class Referent:
  """The expression of a scene: its template, text and target object indices."""
  template: str
  text: str
  targets: tuple[int, ...]


@dataclasses.dataclass(frozen=True)
class Scene:
  """A drawn layout: background uint8 `[H, W, 3]`, objects and the referring expression."""
  background: np.ndarray
  objects: tuple[SceneObject, ...]
  referent: Referent
  follow_ups: tuple[Referent, ...] = ()  # further questions about the same layout

  @property
  def referents(self) -> tuple[Referent, ...]:
    return (self.referent,) + self.follow_ups

  def image(self) -> np.ndarray:
    """uint8 `[H, W, 3]`."""
    image = self.background.copy()
    for obj in self.objects:
      image[obj.region][obj.footprint()] = obj.rgb
    return image

  def mask(self, referent: Referent | None = None) -> np.ndarray:
    """bool `[H, W]`: the union of the targets of `referent` (default: the scene's
    expression); all False without a target."""
    mask = np.zeros(self.background.shape[:2], bool)
    for i in (referent or self.referent).targets:
      mask[self.objects[i].region] |= self.objects[i].footprint()
    return mask


Candidates = list[tuple[str, tuple[int, ...]]]
Template = Callable[[Sequence[SceneObject], float], Candidates]


def _groups(objects: Sequence[SceneObject], *attrs: str) -> dict[tuple, tuple[int, ...]]:
  """Object indices by their values of `attrs` (only the values present)."""
  groups = {}
  for i, obj in enumerate(objects):
    groups.setdefault(tuple(getattr(obj, a) for a in attrs), []).append(i)
  return {key: tuple(idx) for key, idx in groups.items()}


def _clear_extreme(objects: Sequence[SceneObject], group: Sequence[int], axis: int,
                   sign: int, margin: float) -> int | None:
  """The member maximising `sign * centre[axis]` by >= `margin` over the others, if any."""
  keyed = sorted((sign * objects[i].centre[axis], i) for i in group)
  if len(keyed) >= 2 and keyed[-1][0] - keyed[-2][0] >= margin:
    return keyed[-1][1]
  return None


def _positional(objects: Sequence[SceneObject], groups: dict[str, tuple[int, ...]],
                phrases: dict[str, tuple[int, int]], fmt: str, margin: float) -> Candidates:
  """`fmt.format(noun=, phrase=)` for each noun group and phrase with a clear extreme."""
  out = []
  for noun, group in groups.items():
    for phrase, (axis, sign) in phrases.items():
      target = _clear_extreme(objects, group, axis, sign, margin)
      if target is not None:
        out.append((fmt.format(noun=noun, phrase=phrase), (target,)))
  return out


def colour_shape(objects: Sequence[SceneObject], margin: float) -> Candidates:
  del margin
  return [(f'the {c} {s}', idx) for (c, s), idx in _groups(objects, 'colour', 'shape').items()
          if len(idx) == 1]


def size_colour_shape(objects: Sequence[SceneObject], margin: float) -> Candidates:
  del margin
  groups = _groups(objects, 'size', 'colour', 'shape')
  return [(f'the {z} {c} {s}', idx) for (z, c, s), idx in groups.items() if len(idx) == 1]


def shape_relative(objects: Sequence[SceneObject], margin: float) -> Candidates:
  groups = {s: idx for (s,), idx in _groups(objects, 'shape').items() if len(idx) == 2}
  return _positional(objects, groups, WHERE, 'the {noun} {phrase}', margin)


def colour_relative(objects: Sequence[SceneObject], margin: float) -> Candidates:
  groups = {f'{c} shape': idx for (c,), idx in _groups(objects, 'colour').items()
            if len(idx) == 2}
  return _positional(objects, groups, WHERE, 'the {noun} {phrase}', margin)


def shape_superlative(objects: Sequence[SceneObject], margin: float) -> Candidates:
  groups = {s: idx for (s,), idx in _groups(objects, 'shape').items() if len(idx) >= 2}
  return _positional(objects, groups, MOST, 'the {phrase} {noun}', margin)


def colour_all(objects: Sequence[SceneObject], margin: float) -> Candidates:
  del margin
  return [(f'all {c} shapes', idx) for (c,), idx in _groups(objects, 'colour').items()
          if len(idx) >= 2]


def _absent_pairs(objects: Sequence[SceneObject]) -> list[tuple[str, str]]:
  present = {(obj.colour, obj.shape) for obj in objects}
  return [(c, s) for c in COLOURS for s in SHAPES if (c, s) not in present]


def absent_colour_shape(objects: Sequence[SceneObject], margin: float) -> Candidates:
  del margin
  return [(f'the {c} {s}', ()) for c, s in _absent_pairs(objects)]


def absent_size_colour_shape(objects: Sequence[SceneObject], margin: float) -> Candidates:
  del margin
  return [(f'the {z} {c} {s}', ()) for c, s in _absent_pairs(objects) for z in SIZES]


TARGET_TEMPLATES: dict[str, Template] = {
    'colour_shape': colour_shape, 'size_colour_shape': size_colour_shape,
    'shape_relative': shape_relative, 'colour_relative': colour_relative,
    'shape_superlative': shape_superlative, 'colour_all': colour_all}
NO_TARGET_TEMPLATES: dict[str, Template] = {
    'absent_colour_shape': absent_colour_shape,
    'absent_size_colour_shape': absent_size_colour_shape}
TEMPLATES = TARGET_TEMPLATES | NO_TARGET_TEMPLATES

_SHADES = np.clip(np.array(list(COLOURS.values()), np.float64)[:, None] *
                  np.linspace(1 - SHADE_JITTER, 1 + SHADE_JITTER, 7)[None, :, None],
                  0, 255).reshape(-1, 3)


def _pick(rng: np.random.Generator, options: Sequence):
  return options[rng.integers(len(options))]


def _shade(colour: str, factor: float) -> tuple[int, int, int]:
  return tuple(min(255, round(v * factor)) for v in COLOURS[colour])


def has_contrast(rgb: np.ndarray, amplitude: float) -> bool:
  """Whether `rgb` +- `amplitude` grey levels is >= `MIN_CONTRAST` from every shade."""
  needed = MIN_CONTRAST + amplitude * math.sqrt(3)
  return bool(np.linalg.norm(_SHADES - rgb, axis=-1).min() >= needed)


def _base_colour(rng: np.random.Generator, tone: str, amplitude: float) -> np.ndarray:
  """A colour of `tone` with contrast (its fallback grey after the tries)."""
  low, high = BACKGROUND_TONES[tone]
  for _ in range(MAX_BACKGROUND_TRIES):
    base = rng.integers(low, high + 1, size=3)
    if has_contrast(base, amplitude):
      return base
  return np.full(3, FALLBACK_GREYS[tone])


def _smooth_noise(rng: np.random.Generator, size: int, cells: int = 4) -> np.ndarray:
  """`[size, size]` in [-1, 1]: a `(cells + 1)^2` grid of U[-1, 1] upsampled bilinearly."""
  grid = rng.uniform(-1, 1, (cells + 1, cells + 1))
  t = np.linspace(0, cells, size)
  hat = np.maximum(0, 1 - np.abs(t[:, None] - np.arange(cells + 1)[None]))
  return hat @ grid @ hat.T


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
  """uint8 `[size, size, 3]`: a light or dark colour, solid or with smooth noise."""
  tone = _pick(rng, tuple(BACKGROUND_TONES))
  noisy = rng.random() < 0.5
  base = _base_colour(rng, tone, NOISE_AMPLITUDE if noisy else 0)
  if not noisy:
    return np.full((size, size, 3), base, np.uint8)
  noise = np.rint(NOISE_AMPLITUDE * _smooth_noise(rng, size)).astype(np.int16)
  return np.clip(noise[..., None] + base.astype(np.int16), 0, 255).astype(np.uint8)


def _place(rng: np.random.Generator, boxes: Sequence[tuple[int, int, int, int]],
           side: int, gap: int, size: int) -> tuple[int, int] | None:
  """A top-left `(x, y)`, uniform among those whose `side` box is >= `gap` px from `boxes`."""
  free = np.ones((size - side + 1, size - side + 1), bool)  # [y, x]
  for x0, y0, x1, y1 in boxes:
    free[max(y0 - gap - side + 1, 0):y1 + gap, max(x0 - gap - side + 1, 0):x1 + gap] = False
  corners = np.flatnonzero(free)
  if corners.size == 0:
    return None
  y, x = divmod(int(corners[rng.integers(corners.size)]), free.shape[1])
  return x, y


def _objects(rng: np.random.Generator, size: int, num_objects: tuple[int, int],
             gap: int) -> tuple[SceneObject, ...]:
  scale = size / REFERENCE_SIZE
  objects = []
  for _ in range(rng.integers(num_objects[0], num_objects[1] + 1)):
    shape, colour, size_name = (_pick(rng, SHAPES), _pick(rng, tuple(COLOURS)),
                                _pick(rng, tuple(SIZES)))
    low, high = SIZES[size_name]
    side = int(rng.integers(round(low * scale), round(high * scale) + 1))
    rgb = _shade(colour, rng.uniform(1 - SHADE_JITTER, 1 + SHADE_JITTER))
    corner = _place(rng, [obj.bbox for obj in objects], side, gap, size)
    if corner is not None:
      x, y = corner
      objects.append(SceneObject(shape, colour, size_name, (x, y, x + side, y + side), rgb))
  return tuple(objects)


class SyntheticScenes:
  """Random-access source of synthetic `RefSample`s (see the module docstring).

  templates: names of `TEMPLATES` to draw from (default all); `num_objects`: the
  inclusive range of objects drawn per scene. `questions > 1` adds up to `questions - 1`
  follow-up expressions about the same layout (each drawn like the first, texts
  distinct): the sample becomes a multi-turn conversation with one mask per answer
  (more training signal per image; the first turn is the single-question sample).
  """

  def __init__(self, num_samples: int, seed: int, size: int = REFERENCE_SIZE,
               no_target_fraction: float = 0.15, num_objects: tuple[int, int] = (2, 6),
               templates: Sequence[str] = tuple(TEMPLATES), questions: int = 1):
    if questions < 1:
      raise ValueError(f'questions must be >= 1, got {questions}.')
    if num_samples < 0 or seed < 0:
      raise ValueError(f'need num_samples >= 0 and seed >= 0, got {num_samples}, {seed}.')
    if not 0 <= no_target_fraction <= 1:
      raise ValueError(f'no_target_fraction must be in [0, 1], got {no_target_fraction}.')
    if not 1 <= num_objects[0] <= num_objects[1]:
      raise ValueError(f'need 1 <= num_objects[0] <= num_objects[1], got {num_objects}.')
    unknown = sorted(set(templates) - set(TEMPLATES))
    if unknown:
      raise ValueError(f'unknown templates {unknown}; known: {sorted(TEMPLATES)}.')
    self.target_templates = tuple(t for t in templates if t in TARGET_TEMPLATES)
    self.no_target_templates = tuple(t for t in templates if t in NO_TARGET_TEMPLATES)
    if ((no_target_fraction < 1 and not self.target_templates) or
        (no_target_fraction > 0 and not self.no_target_templates)):
      raise ValueError(f'templates {list(templates)} lack a family that '
                       f'no_target_fraction={no_target_fraction} draws.')
    self.num_samples = num_samples
    self.seed = seed
    self.size = size
    self.no_target_fraction = no_target_fraction
    self.num_objects = tuple(num_objects)
    self.questions = questions
    self.gap = max(1, round(GAP * size / REFERENCE_SIZE))
    self.margin = MARGIN * size / REFERENCE_SIZE

  def __len__(self) -> int:
    return self.num_samples

  @property
  def groups(self) -> tuple[str, ...]:
    """The template names, which the samples' `group` holds (evaluated separately)."""
    return tuple(TEMPLATES)

  def scene(self, i: int) -> Scene:
    """The layout and expression of sample `i`."""
    i = int(i)
    if not 0 <= i < self.num_samples:
      raise IndexError(f'index {i} out of range for {self.num_samples} samples.')
    rng = np.random.default_rng([self.seed, i])
    names = self._names(rng)
    background = _background(rng, self.size)
    for _ in range(MAX_LAYOUT_TRIES):
      objects = _objects(rng, self.size, self.num_objects, self.gap)
      first = self._referent(rng, objects, names)
      if first is not None:
        referents = [first]
        for _ in range(self.questions - 1):
          follow_up = self._referent(rng, objects, self._names(rng),
                                     {r.text for r in referents})
          referents += [follow_up] if follow_up else []
        return Scene(background, objects, first, tuple(referents[1:]))
    raise ValueError(f'{self._origin(i)}: no layout in {MAX_LAYOUT_TRIES} tries has a '
                     f'candidate for templates {list(names)}.')

  def _names(self, rng: np.random.Generator) -> tuple[str, ...]:
    """The template family of one question: no-target with `no_target_fraction`."""
    no_target = rng.random() < self.no_target_fraction
    return self.no_target_templates if no_target else self.target_templates

  def _referent(self, rng: np.random.Generator, objects: Sequence[SceneObject],
                names: Sequence[str], used: set[str] = frozenset()) -> Referent | None:
    """A template of `names` that fits `objects`, then one of its expressions not in
    `used`; None if there is none."""
    options = {}
    for n in names:
      if candidates := [c for c in TEMPLATES[n](objects, self.margin) if c[0] not in used]:
        options[n] = candidates
    if not options:
      return None
    name = _pick(rng, tuple(options))
    text, targets = _pick(rng, options[name])
    return Referent(name, text, targets)

  def __getitem__(self, i: int) -> RefSample:
    scene = self.scene(i)
    return RefSample(image=scene.image(), sentences=[scene.referent.text],
                     masks=[scene.mask(r) for r in scene.referents],
                     origin=self._origin(int(i)),
                     dialogue=[r.text for r in scene.referents] if scene.follow_ups else None,
                     group=scene.referent.template)

  def _origin(self, i: int) -> str:
    return f'synthetic(seed={self.seed})[{i}]'


def write_samples(source: Sequence[RefSample], out_dir: epath.PathLike,
                  n: int) -> epath.Path:
  """Writes samples `0..n-1` as `images/`, `masks/` PNGs and `annotations.jsonl`.

  Images are RGB, masks 8-bit grey 0/255; each jsonl line is
  `{"image": "images/000000.png", "mask": "masks/000000.png", "expressions": [...]}`
  with paths relative to `out_dir` (local or cloud). Returns the jsonl path.
  """
  out = user_input.path(out_dir)
  out.mkdir(parents=True, exist_ok=True)
  lines = []
  for i in range(n):
    sample = source[i]
    if len(sample.masks) != 1:
      raise ValueError(f'{sample.origin}: expected one mask, got {len(sample.masks)}.')
    image, mask = f'images/{i:06d}.png', f'masks/{i:06d}.png'
    image_io.write_png(out / image, np.asarray(sample.image, np.uint8))
    image_io.write_png(out / mask, sample.masks[0].astype(np.uint8) * 255)
    lines.append(json.dumps({'image': image, 'mask': mask, 'expressions': sample.sentences}))
  path = out / 'annotations.jsonl'
  path.write_text(''.join(line + '\n' for line in lines))
  return path
