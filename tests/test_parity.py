"""The parity checker on every golden fixture of an implemented kind, and on bad cases."""

import json
import os

import numpy as np
import pytest

from argenseg_jax import parity
from argenseg_jax.parity.compare import compare
from argenseg_jax.parity.kinds import RUNNERS
from tests.conftest import GOLDEN, golden_fixture

# The kinds of the golden folder, each implemented and tested on its fixture.
KINDS = ('var_vqvae', 'internlm2', 'intern_vit', 'internvl_chat', 'argenseg')


def _fixture_kinds() -> dict[str, str]:
  """`{folder name: kind}` of the golden folder's fixtures."""
  if not GOLDEN.is_dir():
    return {}
  return {d.name: json.loads((d / 'fixture.json').read_text())['kind']
          for d in sorted(GOLDEN.iterdir()) if (d / 'fixture.json').is_file()}


def _implemented_fixtures():
  if not GOLDEN.is_dir():
    return ['var_vqvae']  # golden_fixture() then fails (CI) or skips with the reason
  return [name for name, kind in _fixture_kinds().items() if kind in RUNNERS]


def test_every_kind_is_implemented_and_has_a_fixture():
  """The fixtures tested below are found by listing the folder: a lost fixture or runner
  would drop out silently, so every kind must be there (fails under CI=true, else skips)."""
  assert set(KINDS) <= set(RUNNERS)
  missing = sorted(set(KINDS) - set(_fixture_kinds().values()))
  if missing:
    message = f'no golden fixture of kind {", ".join(missing)} in {GOLDEN}'
    if os.environ.get('CI') == 'true':
      pytest.fail(message)
    pytest.skip(message)


@pytest.mark.parametrize('name', _implemented_fixtures())
def test_golden_fixture_passes(name, capsys):
  """Every output of the fixture, under its own rule (nothing excluded)."""
  code = parity.main([str(golden_fixture(name))])
  out = capsys.readouterr().out
  assert code == 0, out
  assert 'PASSED' in out and 'skipped' not in out


def test_compare_rules():
  ref = np.array([1.0, 2.0, 3.0], np.float32)
  assert compare('a', {'atol': 1e-3, 'rtol': 0}, ref + 5e-4, ref).status == 'ok'
  row = compare('a', {'atol': 1e-3, 'rtol': 0}, ref + 2e-3, ref)
  assert row.failed and '3 of 3' in row.note and row.max_abs == pytest.approx(2e-3, rel=1e-3)
  assert compare('i', 'exact', np.array([1, 2]), np.array([1, 3])).failed
  assert compare('i', 'exact', None, np.array([1])).failed  # not produced
  assert compare('i', 'exact', np.zeros((2, 1)), np.zeros((1, 2))).failed  # shape
  assert not compare('d', 'diagnostic', None, np.array([1.0])).failed
  pixels = np.array([0, 128, 255], np.uint8)  # uint8 differences must not wrap around
  off_by_one = {'atol': 1, 'rtol': 0}
  assert compare('m', off_by_one, pixels, np.array([1, 127, 254], np.uint8)).status == 'ok'
  assert compare('m', off_by_one, pixels, np.array([2, 128, 255], np.uint8)).failed


def _linked_fixture(tmp_path, kind=None, outputs=None):
  """A copy of the var_vqvae fixture with links to its big files; `outputs` replaces
  the reference outputs and their rules."""
  src = golden_fixture('var_vqvae')
  for name in ('config.json', 'inputs.npz', 'vae.pth', 'outputs.npz'):
    os.symlink(src / name, tmp_path / name)
  spec = json.loads((src / 'fixture.json').read_text())
  if kind:
    spec['kind'] = kind
  if outputs is not None:
    os.remove(tmp_path / 'outputs.npz')
    np.savez(tmp_path / 'outputs.npz', **{k: v for k, (v, _) in outputs.items()})
    spec['outputs'] = {k: rule for k, (_, rule) in outputs.items()}
  (tmp_path / 'fixture.json').write_text(json.dumps(spec))
  return tmp_path


def test_checker_fails_on_a_wrong_reference(tmp_path, capsys):
  ref = np.load(golden_fixture('var_vqvae') / 'outputs.npz')
  wrong_f = ref['f'].copy()
  wrong_f[0, 0, 0, 0] += 0.01
  fixture = _linked_fixture(tmp_path, outputs={
      'f': (wrong_f, {'atol': 1e-4, 'rtol': 1e-4}), 'idx_s0': (ref['idx_s0'], 'exact')})
  assert parity.main([str(fixture), '--only', 'f']) == 1
  out = capsys.readouterr().out
  assert 'FAIL' in out and 'skipped 1 output' in out and 'idx_s0' in out
  assert parity.main([str(fixture), '--only', 'f', '--exclude', 'f']) == 2  # nothing left


@pytest.mark.slow
def test_crop_window_follows_the_fixture(tmp_path, capsys):
  """`img_all_rand_crop` is the centre crop of whatever size the fixture stores: a smaller,
  non-square centre crop (cut from the stored one) must pass too."""
  src = golden_fixture('var_vqvae')
  ref = np.load(src / 'outputs.npz')['img_all_rand_crop']
  res = json.loads((src / 'config.json').read_text())['input_resolution']
  (sh, sw), (h, w) = ref.shape[-2:], (ref.shape[-2] // 2, 3 * ref.shape[-1] // 4)
  top, left = (res - h) // 2 - (res - sh) // 2, (res - w) // 2 - (res - sw) // 2
  rule = json.loads((src / 'fixture.json').read_text())['outputs']['img_all_rand_crop']
  fixture = _linked_fixture(tmp_path, outputs={
      'img_all_rand_crop': (ref[..., top:top + h, left:left + w], rule)})
  assert parity.main([str(fixture), '--only', 'img_all_rand_crop']) == 0, capsys.readouterr().out


def test_unimplemented_kind_fails_loudly(tmp_path, capsys):
  assert parity.main([str(_linked_fixture(tmp_path, kind='segment_anything'))]) == 2
  assert "kind 'segment_anything' is not implemented yet" in capsys.readouterr().err


def test_missing_fixture_folder(tmp_path, capsys):
  assert parity.main([str(tmp_path / 'nope')]) == 2
  assert 'golden fixture folder not found' in capsys.readouterr().err
