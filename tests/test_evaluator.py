"""The evaluator end to end with a fake segmenter, and the `--data` spec parser."""

import argparse
import dataclasses
import importlib
import json
import zlib

import numpy as np
import pytest
from PIL import Image

from argenseg_jax import chat_template
from argenseg_jax.cli import evaluate
from argenseg_jax.evaluation import evaluator
from argenseg_jax.progress import Progress
from argenseg_jax.ref_sample import RefSample
from data_pipelines import data_spec

H, W = 4, 5


def _mask(rows=slice(None), cols=slice(None)):
  """bool [H, W], True on `[rows, cols]`."""
  m = np.zeros((H, W), bool)
  m[rows, cols] = True
  return m


@dataclasses.dataclass
class FakeResult:
  masks: list


class FakeSegmenter:
  """Answers each prompt with a given mask (None: an answer without a mask)."""

  def __init__(self, answers: dict, size=(W, H)):
    self.answers, self.size, self.calls = answers, size, []

  def segment(self, images, prompts):
    assert all(im.mode == 'RGB' and self.size in (None, im.size) for im in images)
    prompts = [chat_template.question_text(p, 'internvl') for p in prompts]  # its template
    self.calls.append(list(prompts))
    masks = [self.answers.get(p) for p in prompts]
    return [FakeResult([] if m is None else [m]) for m in masks]


P = chat_template.referring_question
GT0 = _mask(cols=slice(0, 2))                 # union of cols 0 and 1: 8 px
GT3 = _mask(rows=slice(0, 2))                 # 10 px
EMPTY = np.zeros((H, W), bool)


@pytest.fixture
def source(tmp_path):
  """4 samples: two masks joined, no sentences, no target, an image given as a path."""
  image = np.arange(H * W * 3, dtype=np.uint8).reshape(H, W, 3)
  path = tmp_path / 'dog.png'
  Image.fromarray(image).save(path)
  return [
      RefSample(image, ['the cat', 'left cat'], [_mask(cols=slice(0, 1)),
                                                 _mask(cols=slice(1, 2))], 'a:1'),
      RefSample(image, [], [GT0], 'a:2'),
      RefSample(image, ['nothing'], [EMPTY], 'a:3'),
      RefSample(str(path), ['dog'], [GT3], 'a:4'),
  ]


ANSWERS = {
    P(['the cat', 'left cat']): _mask(cols=slice(1, 3)),   # I 4, U 12
    P(['the cat']): GT0,                                   # I 8, U 8
    P(['left cat']): None,                                 # I 0, U 8
    P(['nothing']): None,                                  # I 0, U 0 -> IoU 1
    P(['dog']): _mask(rows=slice(0, 1)),                   # I 5, U 10 -> IoU 1/2
}


def test_prompt_is_the_originals():
  assert P(['dog', 'the brown one']) == (
      '<image>\n Given the following instructions:  dog. the brown one.; please perform '
      'referring segmentation on this image.')


def test_object_protocol(source, tmp_path):
  seg = FakeSegmenter(ANSWERS)
  out = tmp_path / 'eval'
  report = evaluator.evaluate(seg, source, batch_size=2, out_dir=out, num_overlays=2,
                              progress=False, checkpoint='ckpt')
  # 3 questions in batches of 2 (the segmenter pads a short batch itself)
  assert seg.calls == [[P(['the cat', 'left cat']), P(['nothing'])], [P(['dog'])]]
  m = report['metrics']
  assert m['cIoU'] == pytest.approx((4 + 0 + 5) / (12 + 0 + 10))
  assert m['gIoU'] == pytest.approx((1 / 3 + 1 + 1 / 2) / 3)
  assert m['precision@0.5'] == pytest.approx(1 / 3)          # IoU 1/2 is not > 0.5
  assert m['box_acc@0.5'] == pytest.approx(1 / 3)           # box IoUs 1/3, 1, 1/2
  assert m['N-acc'] == 1.0 and m['T-acc'] == 1.0
  assert report['counts'] | {'processes': 1} == {
      'samples': 4, 'skipped_no_sentences': 1, 'queries': 3, 'target': 2, 'no_target': 1,
      'no_mask_answers': 1, 'processes': 1}
  assert [(r['index'], r['sentence'], r['inter'], r['union']) for r in report['per_query']] == [
      (0, -1, 4, 12), (2, -1, 0, 0), (3, -1, 5, 10)]
  assert json.loads((out / 'report.json').read_text()) == report
  assert sorted(p.name for p in out.iterdir()) == [
      'overlay_00_sample0.png', 'overlay_01_sample2.png', 'report.json']
  overlay = np.asarray(Image.open(out / 'overlay_00_sample0.png'))
  assert overlay.shape == (H, 2 * W, 3)


class GroupedSource(list):
  groups = ('cats', 'nothing', 'dogs')


def test_metrics_per_group(source, tmp_path):
  grouped = GroupedSource(dataclasses.replace(s, group=g) for s, g in zip(
      source, ['cats', 'cats', 'nothing', '']))
  report = evaluator.evaluate(FakeSegmenter(ANSWERS), grouped, batch_size=2, out_dir=tmp_path,
                              num_overlays=0, progress=False)
  groups = report['per_group']
  assert list(groups) == ['cats', 'nothing']  # 'dogs' has no query; sample 3 no group
  assert groups['cats']['queries'] == 1 and groups['cats']['cIoU'] == pytest.approx(4 / 12)
  assert groups['nothing']['N-acc'] == 1.0 and groups['nothing']['T-acc'] is None
  assert groups['nothing']['gIoU'] == 1.0 and report['metrics']['gIoU'] != 1.0
  printed = evaluator.format_summary(report)
  assert '  cats (1 queries): cIoU 33.33' in printed and 'nothing (1 queries)' in printed
  bad = GroupedSource([dataclasses.replace(source[0], group='birds')])
  with pytest.raises(ValueError, match="group 'birds' is not one of"):
    evaluator.evaluate(FakeSegmenter(ANSWERS), bad, batch_size=1, out_dir=tmp_path,
                       num_overlays=0, progress=False)


def test_sentence_protocol(source, tmp_path):
  seg = FakeSegmenter(ANSWERS)
  report = evaluator.evaluate(seg, source, batch_size=3, protocol='sentence',
                              out_dir=tmp_path, num_overlays=0, progress=False)
  assert [(r['index'], r['sentence'], r['iou']) for r in report['per_query']] == [
      (0, 0, 1.0), (0, 1, 0.0), (2, 0, 1.0), (3, 0, 0.5)]
  assert report['metrics']['cIoU'] == pytest.approx((8 + 0 + 0 + 5) / (8 + 8 + 0 + 10))
  assert report['metrics']['gIoU'] == pytest.approx(2.5 / 4)
  assert report['metrics']['T-acc'] == pytest.approx(2 / 3)
  assert report['counts']['queries'] == 4 and report['counts']['no_mask_answers'] == 2
  assert [len(c) for c in seg.calls] == [3, 1]


def _answer(image, prompt: str) -> np.ndarray:
  """The pixel segmenter's mask: pixels whose red value plus the prompt's CRC is < 5
  modulo 11 (so it depends on every pixel and on the whole prompt)."""
  red = np.asarray(image)[..., 0].astype(np.int64)
  return (red + zlib.crc32(prompt.encode())) % 11 < 5


class PixelSegmenter:
  """Answers each (image, prompt) with `_answer`, no mask when that is empty."""

  def segment(self, images, prompts):
    assert len(images) == len(prompts)
    masks = [_answer(im, chat_template.question_text(p, 'internvl'))
             for im, p in zip(images, prompts)]
    return [FakeResult([m] if m.any() else []) for m in masks]


@pytest.fixture
def sized_source(tmp_path):
  """Samples of different image sizes and random content: two masks joined, an empty
  GT, no sentences, an image given as a path."""
  rng = np.random.default_rng(7)
  samples = []
  for k, ((w, h), sentences, n_masks) in enumerate([
      ((5, 4), ['red one', 'the big cat'], 2), ((3, 6), ['dog'], 1), ((7, 2), [], 1),
      ((6, 5), ['blue', 'a car', 'that thing'], 1), ((4, 7), ['nothing here'], 0),
      ((2, 3), ['tiny'], 1)]):
    image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    if k == 3:
      image_path = tmp_path / 'car.png'
      Image.fromarray(image).save(image_path)
      image = str(image_path)
    masks = [rng.random((h, w)) < 0.4 for _ in range(n_masks)] or [np.zeros((h, w), bool)]
    samples.append(RefSample(image, sentences, masks, f'b:{k}'))
  return samples


def _expected_rows(samples, protocol):
  """`(index, sentence, inter, union, iou, no_mask)` per query, computed directly."""
  rows = []
  for i, sample in enumerate(samples):
    image = np.asarray(Image.open(sample.image)) if isinstance(sample.image, str) else sample.image
    gt = np.any(sample.masks, axis=0)
    if not sample.sentences:
      continue
    questions = ([(-1, sample.sentences)] if protocol == 'object' else
                 [(k, [s]) for k, s in enumerate(sample.sentences)])
    for k, sentences in questions:
      pred = _answer(image, P(sentences))
      inter, union = int((pred & gt).sum()), int((pred | gt).sum())
      rows.append((i, k, inter, union, inter / union if union else 1.0, not pred.any()))
  return rows


@pytest.mark.parametrize('protocol', evaluator.PROTOCOLS)
def test_each_query_is_paired_with_its_image_prompt_and_gt(sized_source, tmp_path, protocol):
  expected = _expected_rows(sized_source, protocol)
  report = evaluator.evaluate(PixelSegmenter(), sized_source, batch_size=3, protocol=protocol,
                              out_dir=tmp_path, num_overlays=0, progress=False)
  assert [(r['index'], r['sentence'], r['inter'], r['union'], r['iou'], r['no_mask'])
          for r in report['per_query']] == expected
  inter, union = sum(r[2] for r in expected), sum(r[3] for r in expected)
  assert report['metrics']['cIoU'] == pytest.approx(inter / union)
  assert report['metrics']['gIoU'] == pytest.approx(np.mean([r[4] for r in expected]))
  assert report['counts']['no_mask_answers'] == sum(r[5] for r in expected)
  assert report['counts']['skipped_no_sentences'] == 1


def test_max_samples_and_bad_arguments(source, tmp_path):
  report = evaluator.evaluate(FakeSegmenter(ANSWERS), source, batch_size=4, out_dir=tmp_path,
                              max_samples=1, num_overlays=0, progress=False)
  assert report['counts']['samples'] == 1 and report['counts']['queries'] == 1
  with pytest.raises(ValueError, match='protocol'):
    evaluator.evaluate(None, source, batch_size=1, protocol='word', out_dir=tmp_path)


def test_mask_size_mismatch_names_the_sample(source, tmp_path):
  source[0].masks.append(np.zeros((W, H), bool))
  with pytest.raises(ValueError, match='a:1'):
    evaluator.evaluate(FakeSegmenter(ANSWERS), source, batch_size=1, out_dir=tmp_path,
                       progress=False)


def test_shard_ranges_cover_evenly():
  assert [evaluator.shard_range(10, p, 3) for p in range(3)] == [
      range(0, 3), range(3, 6), range(6, 10)]
  assert [len(evaluator.shard_range(2, p, 4)) for p in range(4)] == [0, 1, 0, 1]


def test_progress_bar_on_stderr(capsys):
  bar = Progress(10, unit='steps', initial=4)  # a resumed run
  bar.update(2, 'loss 0.5')
  bar.close()
  assert bar.done == 6
  err = capsys.readouterr().err
  assert '6/10 [' in err and 'steps/s, loss 0.5]' in err
  quiet = Progress(10, enabled=False)
  quiet.update(2, 'loss 0.5')
  quiet.close()
  assert not capsys.readouterr().err


def test_run_eval_with_a_synthetic_spec(tmp_path, monkeypatch, capsys):
  from argenseg_jax import segmenter  # pylint: disable=import-outside-toplevel
  monkeypatch.setattr(segmenter.Segmenter, 'load', lambda *a, **k: FakeSegmenter({}, size=None))
  parser = argparse.ArgumentParser()
  evaluate.add_eval_arguments(parser)
  args = parser.parse_args(['--checkpoint', 'ckpt', '--data', 'synthetic:seed=0,n=3',
                            '--out', str(tmp_path), '--batch-size', '2'])
  assert evaluate.run_eval(args) == 0
  report = json.loads((tmp_path / 'report.json').read_text())
  assert report['counts']['samples'] == 3 and report['data'] == 'synthetic:seed=0,n=3'
  assert 'cIoU' in capsys.readouterr().out


def test_spec_errors(tmp_path):
  for bad in ('nope:x', 'val.jsonl'):
    with pytest.raises(data_spec.DataSpecError, match='known kinds: custom:FILE.jsonl'):
      data_spec.parse(bad)
  with pytest.raises(FileNotFoundError, match=str(tmp_path / 'missing.jsonl')):
    data_spec.parse(f'custom:{tmp_path}/missing.jsonl')
  (tmp_path / 'val.json').write_text('[]')
  with pytest.raises(data_spec.DataSpecError, match='FILE.json@IMAGE_ROOT'):
    data_spec.parse(f'psalm:{tmp_path}/val.json')
  with pytest.raises(FileNotFoundError, match='image root not found'):
    data_spec.parse(f'psalm:{tmp_path}/val.json@{tmp_path}/images')
  with pytest.raises(data_spec.DataSpecError, match='SPLIT_BY:SPLIT'):
    data_spec.parse(f'refcoco:{tmp_path}@unc')
  for bad in ('n=5', 'seed=1,n=five', 'seed=1,n=5,colour=3', 'seed=1,n=5,objects=a-b'):
    with pytest.raises(data_spec.DataSpecError, match='synthetic spec'):
      data_spec.parse(f'synthetic:{bad}')


def test_spec_parses(tmp_path):
  (tmp_path / 'a@b').mkdir()
  (tmp_path / 'a@b' / 'val.json').write_text('[]')
  spec = data_spec.parse(f'psalm:{tmp_path}/a@b/val.json@{tmp_path}')   # the last @ splits
  assert spec.kwargs == {'path': tmp_path / 'a@b' / 'val.json', 'image_root': tmp_path}
  assert data_spec.parse(f'refcoco:{tmp_path}@unc:val').kwargs == {
      'root': tmp_path, 'split_by': 'unc', 'split': 'val'}
  assert data_spec.parse('synthetic:seed=1,n=5,no_target_fraction=0.5').kwargs == {
      'seed': 1, 'num_samples': 5, 'no_target_fraction': 0.5}
  assert data_spec.parse('synthetic:seed=1,n=5,objects=1-2,templates=colour_shape+colour_all'
                         ).kwargs == {'seed': 1, 'num_samples': 5, 'num_objects': (1, 2),
                                      'templates': ('colour_shape', 'colour_all')}
  assert data_spec.parse('synthetic:seed=1,n=5,objects=3').kwargs['num_objects'] == (3, 3)
  source = data_spec.open_source('synthetic:seed=0,n=2')
  assert len(source) == 2 and isinstance(source[1], RefSample)


def test_every_kind_names_an_existing_reader():
  for kind in data_spec.KINDS.values():
    assert callable(getattr(importlib.import_module(kind.module), kind.factory))


def test_gather_sums_hosts(monkeypatch):
  """Two hosts that saw the same rows: counters double, rows are concatenated."""
  monkeypatch.setattr(evaluator.jax, 'process_count', lambda: 2)
  monkeypatch.setattr(evaluator.multihost_utils, 'process_allgather',
                      lambda x: np.stack([np.asarray(x)] * 2))
  acc = evaluator.metrics.MetricAccumulator()
  acc.add(evaluator.metrics.score(GT3, GT0))
  rows = np.arange(2 * len(evaluator.ROW), dtype=np.float64).reshape(2, -1)
  gather = evaluator._gather  # pylint: disable=protected-access
  total, table, counts = gather(acc, rows, np.array([3, 1]))
  assert total.samples == 2 and total.summary() == pytest.approx(acc.summary())
  np.testing.assert_array_equal(table, np.concatenate([rows, rows]))
  np.testing.assert_array_equal(counts, [6, 2])
