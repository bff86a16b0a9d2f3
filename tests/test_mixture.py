"""Meta files and the training mixture: proportions, exact resume, per-process shards,
panoptic classes, understanding and text-only examples, reader errors, `meta:` eval."""

import json
import os
import pathlib
import re
import subprocess
import sys

import grain
import numpy as np
import pytest
from PIL import Image

from argenseg_jax import example_spec
from argenseg_jax.bundled import MIXTURE_TINY
from argenseg_jax.config_args import load_config
from argenseg_jax.evaluation import evaluator
from argenseg_jax.tokenizer import scratch_tokenizer
from data_pipelines import data_spec, miniature_mixture, panoptic, train_pipeline
from data_pipelines.meta_file import read_meta
from data_pipelines.mixture import Mixture
from data_pipelines.psalm_reader import SKIP_TEXT_TO_IMAGE, PsalmReader
from data_pipelines.synthetic_scenes import SyntheticScenes

REPO = pathlib.Path(__file__).resolve().parent.parent
DRAWS = 2000


@pytest.fixture(scope='module')
def mini(tmp_path_factory) -> pathlib.Path:
  """A miniature written afresh (4 entries per source), its meta file's folder."""
  out = tmp_path_factory.mktemp('mini')
  miniature_mixture.write(out, per_source=4, size=48, seed=3)
  return out


@pytest.fixture(scope='module')
def encoder():
  cfg = load_config('argenseg:variant=tiny')
  spec = example_spec.spec_for(cfg, length_buckets=(256,), max_masks=2)
  return scratch_tokenizer(cfg), spec


def _edit_meta(folder: pathlib.Path, out: pathlib.Path, **changes) -> pathlib.Path:
  """The meta file of `folder` with each source's keys updated by `changes[name]`."""
  meta = json.loads((folder / 'meta.json').read_text())
  for name, update in changes.items():
    meta[name].update(update)
  out.write_text(json.dumps(meta))
  return out


def _drawn_groups(source, n: int, seed: int = 0) -> list[str]:
  ds = grain.MapDataset.source(source).shuffle(seed=seed).repeat(None)
  return [ds[k].group for k in range(n)]


def _within_sampling_error(groups: list[str], shares: dict[str, float]) -> None:
  for name, p in shares.items():
    seen = groups.count(name) / len(groups)
    assert abs(seen - p) <= 4 * np.sqrt(p * (1 - p) / len(groups)), (name, seen, p)


def test_proportions_follow_length_times_repeat_time(mini, tmp_path):
  meta = _edit_meta(mini, tmp_path / 'meta.json', refcoco={'repeat_time': 3},
                    understanding={'repeat_time': 0.5}, text_only={'repeat_time': 2})
  mixture = Mixture(meta, mini)
  n = {'refcoco': 12, 'gref': 4, 'coco_seg': 4, 'ade': 4, 'lisa_inst': 4, 'understanding': 2,
       'text_only': 8}  # 4 entries each, times repeat_time (0.5: the first 2)
  assert dict(zip(mixture.groups, mixture.counts)) == n and len(mixture) == 38
  _within_sampling_error(_drawn_groups(mixture, DRAWS), mixture.shares)
  # repeat_time < 1 keeps the first entries; repeats are the same entries drawn again
  origins = {mixture[k].origin for k in range(len(mixture)) if mixture[k].group == 'understanding'}
  assert origins == {f'{mini / "anns/understanding.jsonl"}:{line}' for line in (1, 2)}


def test_weights_replace_the_proportions(mini, tmp_path):
  weights = {'refcoco': 5, 'gref': 1, 'coco_seg': 1, 'ade': 1, 'lisa_inst': 1,
             'understanding': 0.5, 'text_only': 0.5}
  meta = _edit_meta(mini, tmp_path / 'meta.json',
                    **{name: {'weight': w} for name, w in weights.items()})
  mixture = Mixture(meta, mini, seed=1)
  expected = {name: w / sum(weights.values()) for name, w in weights.items()}
  _within_sampling_error(_drawn_groups(mixture, DRAWS, seed=2), expected)
  # a source weighted above its size cycles through all its entries
  drawn = {mixture[k].origin for k in range(len(mixture)) if mixture[k].group == 'refcoco'}
  assert len(drawn) == 4


def _batches(source, encoder, count: int, state=None, process=(0, 1)):
  tok, spec = encoder
  ds = train_pipeline.make_dataset(source, tok, spec, train_pipeline.PipelineConfig(
      batch_size=3, seed=5, process_index=process[0], process_count=process[1]))
  it = iter(ds)
  if state is not None:
    it.set_state(state)
  return [next(it) for _ in range(count)], it.get_state()


def test_resume_mid_epoch_continues_the_exact_sequence(mini, encoder):
  mixture = Mixture(mini / 'meta.json', mini)
  first, state = _batches(mixture, encoder, 4)
  rest, _ = _batches(mixture, encoder, 3, state=state)
  straight, _ = _batches(mixture, encoder, 7)
  for a, b in zip(first + rest, straight):
    for key in train_pipeline.BATCH_KEYS:
      np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def _first_epoch(mixture, process=(0, 1)) -> list:
  """This process's samples among the first epoch's global indices."""
  cfg = train_pipeline.PipelineConfig(batch_size=1, seed=4, process_index=process[0],
                                      process_count=process[1])
  ds = train_pipeline.sample_dataset(mixture, cfg)
  return [ds[k] for k in range(len(range(process[0], len(mixture), process[1])))]


def test_an_epoch_holds_the_exact_counts_and_processes_split_it(mini):
  mixture = Mixture(mini / 'meta.json', mini)
  whole = _first_epoch(mixture)
  assert {g: [s.group for s in whole].count(g) for g in mixture.groups} == dict(
      zip(mixture.groups, mixture.counts))

  def key(sample):
    return sample.origin, sample.conversation[0]['value'], sample.masks[0].sum() \
        if sample.masks else -1

  shards = [_first_epoch(mixture, (p, 2)) for p in range(2)]
  assert sorted(map(key, shards[0] + shards[1])) == sorted(map(key, whole))


def test_draws_change_with_the_epoch_and_the_seed_and_repeat_on_resume(mini):
  mixture = Mixture(mini / 'meta.json', mini, seed=0)
  k = int(mixture.starts[mixture.groups.index('coco_seg')])
  questions = [mixture.epoch_sample(k, e).conversation[0]['value'] for e in range(12)]
  assert len(set(questions)) >= 2  # the class is drawn again each epoch
  assert mixture.epoch_sample(k, 3).conversation == mixture.epoch_sample(k, 3).conversation
  other = Mixture(mini / 'meta.json', mini, seed=9)
  assert [other.epoch_sample(k, e).conversation[0]['value'] for e in range(12)] != questions
  cfg = train_pipeline.PipelineConfig(batch_size=1, seed=4)
  ds = train_pipeline.sample_dataset(mixture, cfg)  # the training order over 6 epochs
  asked = {}
  for g in range(6 * len(mixture)):
    if g % len(mixture) == 0:
      epoch = g // len(mixture)
    sample = ds[g]
    if sample.group == 'coco_seg':
      asked.setdefault((sample.origin, epoch), set()).add(sample.conversation[0]['value'])
  by_entry = {}
  for (origin, _), texts in asked.items():
    by_entry.setdefault(origin, set()).update(texts)
  assert max(len(texts) for texts in by_entry.values()) >= 2
  first = int(mixture.starts[0])  # refcoco: repeat_time 2, data_augment
  n = mixture.readers[0].__len__()
  a, b = mixture[first].image, mixture[first + n].image  # one entry, its two repeats
  assert mixture[first].origin == mixture[first + n].origin and not np.array_equal(a, b)


def test_understanding_and_text_only_examples(mini, encoder):
  tok, spec = encoder
  mixture = Mixture(mini / 'meta.json', mini)
  by_group = {}
  for k in range(len(mixture)):  # per source, a sample with the most masks
    sample = mixture[k]
    if len(sample.masks) >= len(by_group.get(sample.group, sample).masks):
      by_group[sample.group] = sample
  assert len(by_group['lisa_inst'].masks) == 2
  encode = train_pipeline.EncodeExample(tok, spec)
  examples = {g: encode.map(s) for g, s in by_group.items()}
  batch = train_pipeline.pad_batch([examples['text_only'], examples['understanding'],
                                    examples['lisa_inst']], spec)
  np.testing.assert_array_equal(batch['image_flags'], [0, 1, 1])
  np.testing.assert_array_equal(batch['mask_flags'], [0, 0, 0, 0, 1, 1])
  img_context = tok.token_id('<IMG_CONTEXT>')
  assert (batch['ids'][0] == img_context).sum() == 0
  assert (batch['ids'][1] == img_context).sum() == spec.image_tokens
  mask_context = tok.token_id('<MASK_CONTEXT>')
  assert not (batch['labels'][:2] == mask_context).any()  # text loss only
  assert (batch['labels'][:2] >= 0).any()
  assert (batch['labels'][2] == mask_context).sum() == 2 * spec.mask_tokens


def test_panoptic_class_is_reproducible_and_its_mask_is_the_class_pixels(mini):
  reader = PsalmReader(mini / 'anns/coco_seg.jsonl', mini)
  scenes = SyntheticScenes(4, 3, size=48, no_target_fraction=0.0)
  names = panoptic.category_names()
  for i, record in enumerate(reader.records):
    scene = scenes.scene(i)
    seen = set()
    for draw in range(12):
      sample = reader.sample(i, (0, 0, draw))
      again = reader.sample(i, (0, 0, draw))
      np.testing.assert_array_equal(sample.masks[0], again.masks[0])
      category = record.category((0, 0, draw))
      assert sample.conversation == again.conversation
      assert f'Please segment {names[category]} in this image.' in sample.conversation[0]['value']
      expected = np.zeros((48, 48), bool)
      if category == miniature_mixture.BACKGROUND_CATEGORY:
        expected[:] = True
      for obj in scene.objects:
        if miniature_mixture.PANOPTIC_CATEGORY[obj.shape] == category:
          expected[obj.region] |= obj.footprint()
        elif category == miniature_mixture.BACKGROUND_CATEGORY:
          expected[obj.region] &= ~obj.footprint()
      np.testing.assert_array_equal(sample.masks[0], expected)
      seen.add(category)
    assert len(seen) >= 2  # the draws choose among the entry's classes


def test_segment_ids_span_the_three_channels():
  rgb = np.array([[[44, 1, 0], [112, 17, 1], [0, 0, 0]]], np.uint8)
  np.testing.assert_array_equal(panoptic.segment_ids(rgb), [[300, 70000, 0]])
  assert len(panoptic.category_names()) == 133


def _write_lines(path: pathlib.Path, entries) -> pathlib.Path:
  path.write_text(''.join(json.dumps(e) + '\n' for e in entries))
  return path


def test_errors_name_the_file_and_the_entry(mini, tmp_path):
  def meta_with(**source):
    entry = {'root': '', 'annotation': 'anns/gref.jsonl', 'repeat_time': 1, **source}
    return _write_lines(tmp_path / 'meta.json', []).write_text(json.dumps({'gref': entry}))

  meta = tmp_path / 'meta.json'
  for source, message in ((dict(sampling_ratio=2), r"unknown keys \['sampling_ratio'\]"),
                          (dict(repeat_time=1.5), r'"repeat_time" above 1 must be an integer'),
                          (dict(repeat_time=0), r'"repeat_time" must be a finite positive'),
                          (dict(repeat_time=float('nan')), r'"repeat_time" must be a finite'),
                          (dict(annotation='anns/gref.json'), r'"annotation" must be a \.jsonl')):
    meta_with(**source)
    with pytest.raises(ValueError, match=rf"{re.escape(str(meta))}: source 'gref': {message}"):
      read_meta(meta, mini)
  meta.write_text(json.dumps({'a': {'root': '', 'annotation': 'x.jsonl', 'repeat_time': 1,
                                    'weight': 2},
                              'b': {'root': '', 'annotation': 'y.jsonl', 'repeat_time': 1}}))
  with pytest.raises(ValueError, match=r"\"weight\" is given for \['a'\] only"):
    read_meta(meta, mini)
  meta_with(annotation='anns/missing.jsonl')
  with pytest.raises(FileNotFoundError, match=r'annotation file not found: .*missing\.jsonl'):
    Mixture(meta, mini)

  good = json.loads((mini / 'anns/coco_seg.jsonl').read_text().splitlines()[0])
  anns = tmp_path / 'bad.jsonl'
  for change, message in ((dict(seg_info=[]), r'"seg_info" must be a non-empty list'),
                          (dict(seg_info=[{'id': 1, 'category_id': 12}]),
                           r'category ids .* fit neither the official COCO panoptic ids nor'),
                          (dict(conversations=[{'from': 'human', 'value': 'Segment it.'},
                                               good['conversations'][1]]),
                           r'must hold "\{\}" for the class name')):
    _write_lines(anns, [good, {**good, **change}])
    with pytest.raises(ValueError, match=rf'{re.escape(str(anns))}(:2)?: .*{message}'):
      PsalmReader(anns, mini)
  anns.write_text(json.dumps(good) + '\n{"image": \n')
  with pytest.raises(ValueError, match=rf'{anns}:2: invalid JSON'):
    PsalmReader(anns, mini)
  _write_lines(anns, [good, {**good, 'mask': 'masks/none.png'}])
  with pytest.raises(FileNotFoundError, match=rf'{anns}:2: panoptic mask not found'):
    PsalmReader(anns, mini).sample(1, ())
  with pytest.raises(ValueError, match=r"source 'lisa_inst' has answers with 2 masks, more "
                                       r'than config.data.max_masks=1'):
    Mixture(mini / 'meta.json', mini).check_max_masks(1)
  absent = {**good, 'seg_info': [{'id': 5, 'category_id': c} for c in (37, 38, 72, 199)]}
  with pytest.raises(ValueError, match=rf'{re.escape(str(anns))}:1: no pixel of .* holds a '
                                       r'segment of category'):
    PsalmReader(_write_lines(anns, [absent]), mini).sample(0, ())
  Image.fromarray(np.zeros((48, 48), np.uint8)).convert('P').save(tmp_path / 'p.png')
  with pytest.raises(ValueError, match=r"p\.png is not a readable panoptic PNG: mode 'P'"):
    PsalmReader(_write_lines(anns, [{**good, 'mask': str(tmp_path / 'p.png')}]),
                mini).sample(0, ())
  Image.fromarray(np.full((40, 48), 300, np.uint16)).save(tmp_path / 'small.png')
  small = {**good, 'mask': str(tmp_path / 'small.png'),
           'seg_info': [{'id': 300, 'category_id': 37}]}
  with pytest.raises(ValueError, match=r'is 48x48 but its masks are 48x40'):
    PsalmReader(_write_lines(anns, [small]), mini).sample(0, ())
  text_to_image = {'mask': 'masks/x.png', 'conversations': good['conversations']}
  reader = PsalmReader(_write_lines(anns, [good, text_to_image]), mini)
  assert reader.skipped == [(f'{anns}:2', SKIP_TEXT_TO_IMAGE)]


def test_the_originals_example_entry_reads_as_contiguous_ids(tmp_path):
  """ARGenSeg's example/anns/coco_seg.jsonl: ids 1-3, category 45 (not an official id: the
  original indexes its class list), here in a one-channel PNG."""
  ids = np.zeros((8, 8), np.uint8)
  ids[:2], ids[4:6, :3] = 1, 3
  Image.fromarray(ids).save(tmp_path / 'pan.png')
  Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / 'img.jpg')
  entry = {'image': 'img.jpg', 'mask': 'pan.png', 'dataset': 'coco_seg', 'id': 0,
           'seg_info': [{'id': 1, 'category_id': 45}, {'id': 2, 'category_id': 45},
                        {'id': 3, 'category_id': 45}],
           'conversations': [{'from': 'human', 'value': '<image>\n Please segment {} in this '
                              'image.'}, {'from': 'gpt', 'value': 'Sure, the segmentation '
                                          'result: <mask>.'}]}
  sample = PsalmReader(_write_lines(tmp_path / 'coco_seg.jsonl', [entry]), tmp_path)[0]
  assert sample.conversation[0]['value'] == '<image>\n Please segment bowl in this image.'
  np.testing.assert_array_equal(sample.masks[0], ids > 0)
  assert panoptic.numbering_of({37, 38, 72, 199}, 'x') == 'coco'
  assert panoptic.category_names('contiguous')[132] == 'rug-merged'


def test_roots_and_the_default_base_directory(mini, tmp_path, monkeypatch):
  """Images come from `root`, masks and annotations from the base directory (the
  original's working directory, by default the current one)."""
  (tmp_path / 'masks').symlink_to(mini / 'masks')
  (tmp_path / 'anns').symlink_to(mini / 'anns')
  root = tmp_path / 'root'  # images only
  root.mkdir()
  (root / 'images').symlink_to(mini / 'images')
  meta = _edit_meta(mini, tmp_path / 'meta.json',
                    **{name: {'root': str(root)} for name in miniature_mixture.REPEAT_TIME})
  monkeypatch.chdir(tmp_path)
  mixture = Mixture('meta.json')
  assert len(mixture) == len(Mixture(mini / 'meta.json', mini)) and meta.parent == tmp_path
  first = mixture[0]
  assert first.masks and first.origin.startswith(str(tmp_path / 'anns'))
  images = {mixture[k].image for k in range(len(mixture)) if isinstance(mixture[k].image, str)}
  assert images and all(i.startswith(str(root)) for i in images)


def test_meta_spec_evaluates_each_segmentation_source_once(mini):
  with pytest.raises(data_spec.DataSpecError, match='trains through config.data.meta'):
    data_spec.open_source(f'meta:{mini / "meta.json"}@{mini}', training=True)
  source = data_spec.open_source(f'meta:{mini / "meta.json"}@{mini}')
  assert source.groups == ('refcoco', 'gref', 'coco_seg', 'ade', 'lisa_inst')
  assert source.left_out == ['understanding', 'text_only'] and len(source) == 20
  questions = [evaluator.sample_queries(source[k], k, 'object', source.groups)
               for k in range(len(source))]
  asked = [q[0].prompt for q in questions if q]
  single = [k for k in range(len(source)) if len(source[k].masks) == 1]
  assert len(asked) == len(single) < len(source)  # two-mask LISA answers are not asked
  assert any('Please segment' in q and '{}' not in q for q in asked)


def test_data_augment_reencodes_the_image_reproducibly(mini, tmp_path):
  meta = _edit_meta(mini, tmp_path / 'meta.json', gref={'data_augment': True})
  mixture = Mixture(meta, mini)
  k = mixture.groups.index('gref')
  k = int(mixture.starts[k])
  a, b = mixture[k].image, mixture[k].image
  original = np.asarray(Image.open(mini / 'images/gref_00.png').convert('RGB'))
  np.testing.assert_array_equal(a, b)
  assert a.shape == original.shape and not np.array_equal(a, original)


def test_bundled_miniature_trains_from_the_cli(tmp_path):
  """`argenseg train --config configs/train_mixture_tiny.py`: the loss falls."""
  assert (MIXTURE_TINY / 'meta.json').is_file()
  workdir = tmp_path / 'run'
  run = subprocess.run([sys.executable, '-m', 'argenseg_jax.cli', 'train', '--config',
                        str(REPO / 'configs' / 'train_mixture_tiny.py') + ':steps=30',
                        '--workdir', str(workdir), '--config.export=false'],
                       check=False, cwd=tmp_path, capture_output=True, text=True,
                       env={**os.environ, 'XLA_FLAGS': ''})  # one CPU device
  assert run.returncode == 0, run.stderr[-2000:]
  losses = [json.loads(line)['loss'] for line in
            (workdir / 'metrics.jsonl').read_text().splitlines()]
  assert len(losses) == 30 and np.mean(losses[-5:]) < np.mean(losses[:5]) - 2.0
