import pathlib
import subprocess
import sys

import numpy as np
from PIL import Image

from argenseg_jax import bundled, chat_template, cli
from tests.conftest import REPO
from tests.helpers import SMALL_VQVAE


def test_help_lists_subcommands():
  out = subprocess.run([sys.executable, '-m', 'argenseg_jax.cli', '--help'], cwd=REPO,
                       capture_output=True, text=True, check=True).stdout
  for command in ('vae-roundtrip', 'convert', 'parity'):
    assert command in out


def _iou(written: np.ndarray, truth_png) -> float:
  """IoU of a written mask (grey or RGB, 0..255) with a ground-truth mask PNG."""
  truth = np.asarray(Image.open(truth_png).convert('L')) > 127
  pred = (written.mean(-1) if written.ndim == 3 else written) > 127
  return float((pred & truth).sum() / max((pred | truth).sum(), 1))


def test_vae_roundtrip_writes_png_and_previews(tmp_path, capsys):
  out = tmp_path / 'rec.png'
  code = cli.main(['vae-roundtrip', '--config', SMALL_VQVAE, '--out', str(out),
                   '--previews', str(tmp_path / 'previews')])
  assert code == 0
  assert np.asarray(Image.open(out)).shape == (64, 64, 3)
  assert len(list((tmp_path / 'previews').glob('scale*.png'))) == 4
  captured = capsys.readouterr()
  assert 'RANDOM weights' in captured.err and 'IoU' in captured.out


def test_vae_roundtrip_defaults_to_the_bundled_mask_vqvae(tmp_path, capsys):
  assert cli.main(['vae-roundtrip', '--out', str(tmp_path / 'rec.png')]) == 0
  out = capsys.readouterr().out
  assert 'bundled mask VQ-VAE' in out and '130 codes over scales (1, 2, 3, 4, 6, 8)' in out
  rec = np.asarray(Image.open(tmp_path / 'rec.png'))
  assert rec.shape == (128, 128, 3)
  iou = _iou(rec, bundled.SCENE_MASK)
  assert iou >= 0.85, out  # trained weights (random ones give ~0)


def test_segment_requests(tmp_path, capsys):
  parse = lambda *a: cli.build_parser().parse_args(['segment', '--checkpoint', 'c', *a])  # noqa: E731
  [job] = cli.segment.requests_of(parse('--image', 'a.png', '--expression', 'the cat'))  # pylint: disable=protected-access
  assert job == ('a.png', chat_template.Referring(('the cat',)),
                 pathlib.Path('a_mask.png'), None, '--out', '')
  batch = tmp_path / 'jobs.jsonl'
  batch.write_text('{"image": "a.png", "expression": "the dog", "out": "m.png"}\n'
                   '{"image": "b.png", "prompt": "<image>\\nWhere?"}\n')
  assert [(*j[:3], j.origin) for j in cli.segment.requests_of(parse('--batch', str(batch)))] == [  # pylint: disable=protected-access
      ('a.png', chat_template.Referring(('the dog',)), pathlib.Path('m.png'),
       f'{batch}:1: '),
      ('b.png', '<image>\nWhere?', pathlib.Path('b_line2_mask.png'), f'{batch}:2: ')]
  small = tmp_path / 'small.png'
  Image.new('L', (64, 64)).save(small)
  for args, error in [(['--batch', str(batch), '--target', str(small)], 'not --batch'),
                      (['--image', str(bundled.SCENE), '--expression', 'b', '--target',
                        str(small)], 'is 64x64 px, the image 128x128')]:
    assert cli.main(['segment', *args]) == 2
    assert error in capsys.readouterr().err, args
  batch.write_text('{"image": "a.png"}\n')
  for args, error in [(['--batch', str(batch)], 'jobs.jsonl:1: expected'),
                      (['--prompt', 'a', '--expression', 'b'], 'not both'),
                      (['--expression', 'b'], 'give --image and'),
                      (['--image', 'x.png', '--expression', 'b'], 'image not found: x.png'),
                      (['--image', str(bundled.SCENE_MASK), '--expression', 'b'],
                       'nowhere: no such directory')]:
    assert cli.main(['segment', '--checkpoint', str(tmp_path / 'nowhere'), *args]) == 2
    assert error in capsys.readouterr().err, args


def test_errors_are_reported_not_raised(tmp_path, capsys):
  assert cli.main(['vae-roundtrip', '--config', SMALL_VQVAE, '--image',
                   str(tmp_path / 'missing.png')]) == 2
  assert 'image not found' in capsys.readouterr().err
  assert cli.main(['convert', 'vae', '--from', str(tmp_path / 'x.pth'), '--to',
                   str(tmp_path / 'out')]) == 2
  assert 'not found' in capsys.readouterr().err


def test_segment_defaults_to_the_bundled_model_and_scene(tmp_path, capsys):
  out = tmp_path / 'mask.png'
  assert cli.main(['segment', '--out', str(out), '--overlay', str(tmp_path / 'ov.png')]) == 0
  printed = capsys.readouterr().out
  assert 'bundled small ARGenSeg' in printed and bundled.SCENE_EXPRESSION in printed
  mask = np.asarray(Image.open(out))
  assert mask.shape == (128, 128)
  iou = _iou(mask, bundled.SCENE_TARGET)
  assert iou >= 0.85, printed  # trained weights (an untrained model gives ~0)
  assert f'mask IoU with {bundled.SCENE_TARGET}: {iou:.4f}' in printed
  assert np.asarray(Image.open(tmp_path / 'ov.png')).shape == (128, 128, 3)
