import subprocess
import sys

import numpy as np
from PIL import Image

from argenseg_jax import cli
from tests.conftest import REPO
from tests.helpers import SMALL_VQVAE


def test_help_lists_subcommands():
  out = subprocess.run([sys.executable, '-m', 'argenseg_jax.cli', '--help'], cwd=REPO,
                       capture_output=True, text=True, check=True).stdout
  for command in ('vae-roundtrip', 'convert', 'parity'):
    assert command in out


def test_vae_roundtrip_writes_png_and_previews(tmp_path, capsys):
  out = tmp_path / 'rec.png'
  code = cli.main(['vae-roundtrip', '--config', SMALL_VQVAE, '--out', str(out),
                   '--previews', str(tmp_path / 'previews')])
  assert code == 0
  assert np.asarray(Image.open(out)).shape == (64, 64, 3)
  assert len(list((tmp_path / 'previews').glob('scale*.png'))) == 4
  captured = capsys.readouterr()
  assert 'RANDOM weights' in captured.err and 'IoU' in captured.out


def test_errors_are_reported_not_raised(tmp_path, capsys):
  assert cli.main(['vae-roundtrip', '--config', SMALL_VQVAE, '--image',
                   str(tmp_path / 'missing.png')]) == 2
  assert 'image not found' in capsys.readouterr().err
  assert cli.main(['convert', 'vae', '--from', str(tmp_path / 'x.pth'), '--to',
                   str(tmp_path / 'out')]) == 2
  assert 'not found' in capsys.readouterr().err
