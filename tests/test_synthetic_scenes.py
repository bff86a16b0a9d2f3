"""Synthetic referring scenes: determinism, layout, masks and an independent grammar check."""

import itertools
import json
import pickle
import re

import numpy as np
import pytest
from PIL import Image

from argenseg_jax import bundled
from argenseg_jax.ref_sample import RefSample
from data_pipelines import data_spec
from data_pipelines import synthetic_scenes as ss

NUM = 300
SEED = 7
# The grammar, restated independently of the module (see its docstring).
COLOUR = 'red|green|blue|yellow'
SHAPE = 'circle|square|triangle'
SIDES = {'small': (10, 18), 'big': (26, 40)}
DIRECTION = {'left': (0, -1), 'right': (0, 1), 'top': (1, -1), 'bottom': (1, 1)}


@pytest.fixture(scope='module')
def source():
  return ss.SyntheticScenes(NUM, seed=SEED)


@pytest.fixture(scope='module')
def scenes(source):
  return [source.scene(i) for i in range(NUM)]


def _centre(obj):
  x0, y0, x1, y1 = obj.bbox
  return (x0 + x1) / 2, (y0 + y1) / 2


def _clear_extreme(objects, group, direction, margin):
  """The group member furthest towards `direction`, >= margin beyond the others."""
  axis, sign = DIRECTION[direction]
  best = max(group, key=lambda i: sign * _centre(objects[i])[axis])
  best_key = sign * _centre(objects[best])[axis]
  assert all(best_key - sign * _centre(objects[i])[axis] >= margin
             for i in group if i != best), 'no clear extreme'
  return [best]


def _resolve(text, objects, margin):
  """Target indices of `text` by the documented grammar; asserts its preconditions."""
  of = lambda **kw: [i for i, o in enumerate(objects)  # noqa: E731
                     if all(getattr(o, k) == v for k, v in kw.items())]
  if m := re.fullmatch(rf'all ({COLOUR}) shapes', text):
    group = of(colour=m[1])
    assert len(group) >= 2
    return group
  if m := re.fullmatch(rf'the (left|right|top|bottom)most ({SHAPE})', text):
    group = of(shape=m[2])
    assert len(group) >= 2
    return _clear_extreme(objects, group, m[1], margin)
  if m := re.fullmatch(rf'the (?:({SHAPE})|({COLOUR}) shape) (?:on|at) the '
                       r'(left|right|top|bottom)', text):
    group = of(shape=m[1]) if m[1] else of(colour=m[2])
    assert len(group) == 2
    return _clear_extreme(objects, group, m[3], margin)
  if m := re.fullmatch(rf'the (?:(small|big) )?({COLOUR}) ({SHAPE})', text):
    named = of(colour=m[2], shape=m[3])
    if m[1]:
      named = of(size=m[1], colour=m[2], shape=m[3]) if named else []
    assert len(named) <= 1 and (named or not of(colour=m[2], shape=m[3]))
    return named
  raise AssertionError(f'not in the grammar: {text!r}')


def test_sample_format(source, scenes):
  sample = source[3]
  assert isinstance(sample, RefSample)
  assert sample.image.shape == (128, 128, 3) and sample.image.dtype == np.uint8
  assert len(sample.masks) == 1 and sample.masks[0].dtype == bool
  assert sample.masks[0].shape == (128, 128)
  assert sample.sentences == [scenes[3].referent.text]
  assert sample.origin == f'synthetic(seed={SEED})[3]' and sample.conversation is None
  np.testing.assert_array_equal(sample.image, scenes[3].image())
  np.testing.assert_array_equal(sample.masks[0], scenes[3].mask())


def test_deterministic_by_seed_and_index(source):
  again = pickle.loads(pickle.dumps(ss.SyntheticScenes(NUM, seed=SEED)))
  for i in (NUM - 1, 5, 0):  # another access order
    a, b = source[i], again[np.int64(i)]
    np.testing.assert_array_equal(a.image, b.image)
    np.testing.assert_array_equal(a.masks[0], b.masks[0])
    assert a.sentences == b.sentences
  assert not np.array_equal(source[0].image, source[1].image)
  assert not np.array_equal(source[0].image, ss.SyntheticScenes(1, seed=SEED + 1)[0].image)


def test_objects_inside_sized_and_apart(source, scenes):
  for scene in scenes:
    objs = scene.objects
    assert 2 <= len(objs) <= 6
    for obj in objs:
      x0, y0, x1, y1 = obj.bbox
      assert 0 <= x0 < x1 <= 128 and 0 <= y0 < y1 <= 128
      low, high = SIDES[obj.size]
      assert x1 - x0 == y1 - y0 and low <= x1 - x0 <= high
    for a, b in itertools.combinations(objs, 2):
      (ax0, ay0, ax1, ay1), (bx0, by0, bx1, by1) = a.bbox, b.bbox
      assert (ax1 + source.gap <= bx0 or bx1 + source.gap <= ax0 or
              ay1 + source.gap <= by0 or by1 + source.gap <= ay0)


def test_objects_contrast_with_background(scenes):
  for scene in scenes:
    image = scene.image()
    for obj in scene.objects:
      pixels = obj.footprint()
      shade = np.asarray(obj.rgb) / np.asarray(ss.COLOURS[obj.colour])
      assert np.all((shade > 0.84) & (shade < 1.16) | (np.asarray(obj.rgb) == 255))
      assert np.all(image[obj.region][pixels] == obj.rgb)
      under = scene.background[obj.region][pixels].astype(float)
      assert np.linalg.norm(under - obj.rgb, axis=-1).min() >= ss.MIN_CONTRAST


@pytest.mark.parametrize('tone', sorted(ss.BACKGROUND_TONES))
def test_fallback_greys_have_contrast(tone):
  assert ss.has_contrast(np.full(3, ss.FALLBACK_GREYS[tone]), ss.NOISE_AMPLITUDE)


def test_mask_is_union_of_targets(scenes):
  for scene in scenes:
    mask, targets = scene.mask(), scene.referent.targets
    assert mask.sum() == sum(int(scene.objects[i].footprint().sum()) for i in targets)
    inside = np.zeros_like(mask)
    for i in targets:
      inside[scene.objects[i].region] = True
      assert mask[scene.objects[i].region].any()
    assert not (mask & ~inside).any()
    assert (len(targets) >= 2) == (scene.referent.template == 'colour_all')


def test_no_target_share(scenes):
  no_target = [not s.mask().any() for s in scenes[:200]]
  assert 0.09 <= np.mean(no_target) <= 0.21
  assert all(no_target[i] == s.referent.template.startswith('absent')
             for i, s in enumerate(scenes[:200]))
  assert all(ss.SyntheticScenes(20, 1, no_target_fraction=1.0)[i].has_target is False
             for i in range(20))
  assert all(ss.SyntheticScenes(20, 1, no_target_fraction=0.0)[i].has_target
             for i in range(20))


def test_every_template_reachable(scenes):
  assert {s.referent.template for s in scenes} == set(ss.TEMPLATES)


def test_every_expression_unambiguous(source, scenes):
  for scene in scenes:
    want = _resolve(scene.referent.text, scene.objects, source.margin)
    assert tuple(sorted(want)) == tuple(sorted(scene.referent.targets)), scene.referent


def test_template_subset_and_size():
  src = ss.SyntheticScenes(10, 3, size=64, no_target_fraction=0.0,
                           templates=('shape_superlative',))
  for i in range(10):
    scene = src.scene(i)
    assert scene.referent.template == 'shape_superlative'
    assert scene.image().shape == (64, 64, 3)
    _resolve(scene.referent.text, scene.objects, src.margin)


def test_follow_up_questions(source):
  multi = ss.SyntheticScenes(NUM, source.seed, size=source.size, questions=3)
  counts = []
  for i in range(40):
    single, scene = source.scene(i), multi.scene(i)
    assert scene.referent == single.referent  # the first question is the single one's
    assert np.array_equal(scene.image(), single.image())
    texts = [r.text for r in scene.referents]
    assert len(set(texts)) == len(texts) <= 3
    for r in scene.referents:
      resolved = _resolve(r.text, scene.objects, multi.margin)
      assert tuple(sorted(resolved)) == tuple(sorted(r.targets))
    sample = multi[i]
    assert len(sample.masks) == len(texts)
    assert sample.dialogue == (texts if len(texts) > 1 else None)
    for r, m in zip(scene.referents, sample.masks):
      assert np.array_equal(m, scene.mask(r))
    counts.append(len(texts))
  assert max(counts) == 3 and min(counts) >= 1


def test_invalid_arguments(source):
  with pytest.raises(ValueError, match='unknown templates'):
    ss.SyntheticScenes(1, 0, templates=('colour_shape', 'the_moon'))
  with pytest.raises(ValueError, match='lack a family'):
    ss.SyntheticScenes(1, 0, templates=('colour_shape',))
  with pytest.raises(ValueError, match='no_target_fraction'):
    ss.SyntheticScenes(1, 0, no_target_fraction=1.5)
  with pytest.raises(ValueError, match='questions'):
    ss.SyntheticScenes(1, 0, questions=0)
  with pytest.raises(IndexError):
    source[NUM]


def test_write_samples(source, tmp_path):
  path = ss.write_samples(source, tmp_path, 3)
  lines = [json.loads(line) for line in path.read_text().splitlines()]
  assert len(lines) == 3
  assert lines[1] == {'image': 'images/000001.png', 'mask': 'masks/000001.png',
                      'expressions': source[1].sentences}
  for i, line in enumerate(lines):
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / line['image'])),
                                  source[i].image)
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / line['mask'])) > 127,
                                  source[i].masks[0])


def test_the_bundled_scene_is_its_synthetic_source():
  source = data_spec.open_source(f'{bundled.SCENE_SOURCE},n={bundled.SCENE_INDEX + 1}')
  sample = source[bundled.SCENE_INDEX]
  assert sample.sentences == [bundled.SCENE_EXPRESSION]
  assert np.array_equal(np.asarray(Image.open(bundled.SCENE)), sample.image)
  assert np.array_equal(np.asarray(Image.open(bundled.SCENE_TARGET)) > 127, sample.masks[0])
