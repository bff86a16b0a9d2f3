"""`argenseg eval` of the bundled model gives the same report for every batch size.

Full-grammar synthetic scenes: answers with one mask and answers without (absent
objects) in one batch, so rows reach `<ge_start>` at different steps.
"""

import pytest

from argenseg_jax import bundled
from argenseg_jax.evaluation.evaluator import evaluate
from argenseg_jax.sampler import SamplerConfig
from argenseg_jax.segmenter import Segmenter
from data_pipelines import data_spec


def _reports(tmp_path, data: str, batch_sizes) -> list[dict]:
  source = data_spec.open_source(data)
  reports = []
  for bs in batch_sizes:
    seg = Segmenter.load(bundled.ARGENSEG_SMALL, batch_size=bs,
                         sampler_config=SamplerConfig(max_new_tokens=64))
    reports.append(evaluate(seg, source, batch_size=bs, out_dir=tmp_path / f'bs{bs}',
                            num_overlays=0, progress=False))
  return reports


def _assert_same(reports):
  first = reports[0]
  assert first['counts']['no_target'] > 0 and first['counts']['target'] > 0
  for other in reports[1:]:
    assert other['per_query'] == first['per_query']
    assert other['metrics'] == first['metrics'] and other['counts'] == first['counts']


def test_batch_size_does_not_change_the_report(tmp_path):
  _assert_same(_reports(tmp_path, 'synthetic:seed=1,n=12,size=128', (1, 8)))


@pytest.mark.slow  # ~2.5 min: 64 scenes at three batch sizes
def test_batch_size_does_not_change_the_report_64_scenes(tmp_path):
  _assert_same(_reports(tmp_path, 'synthetic:seed=1,n=64,size=128', (1, 4, 8)))
