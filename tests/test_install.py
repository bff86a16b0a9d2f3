"""A non-editable install works away from the checkout: `pip install .` into a fresh
venv, then, from another directory, `argenseg segment` (the bundled model and scene) and
`argenseg train --config train_tiny` (a named config, shipped in the package).

The venv gets the test environment's dependencies (setuptools included) through a `.pth`
line, so nothing is downloaded; the test environment's pip builds and installs the
package from this checkout into it, without `-e`."""

import os
import pathlib
import shutil
import site
import subprocess
import sys
import venv

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]


def _run(*cmd, cwd) -> str:
  """Runs `cmd` as on a user's machine: one CPU device (not the tests' eight)."""
  env = {k: v for k, v in os.environ.items() if k != 'XLA_FLAGS'}
  proc = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True,
                        text=True, timeout=900, check=False)
  assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
  return proc.stdout


@pytest.mark.slow
def test_a_plain_install_segments_and_trains_from_another_directory(tmp_path):
  env = tmp_path / 'venv'
  venv.create(env)
  python = env / 'bin' / 'python'
  packages = _run(python, '-c', 'import sysconfig; print(sysconfig.get_paths()["purelib"])',
                  cwd=tmp_path).strip()
  (pathlib.Path(packages) / 'deps.pth').write_text(''.join(
      p + '\n' for p in site.getsitepackages()))  # the dependencies, not the package
  source = tmp_path / 'source'  # the build writes build/ and *.egg-info beside setup.py
  shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(
      '.git', '.venv', 'build', 'dist', '*.egg-info', '__pycache__', 'out'))
  _run(sys.executable, '-m', 'pip', '--python', python, 'install', '-q', '--no-deps',
       '--no-build-isolation', '--no-index', source, cwd=tmp_path)
  work = tmp_path / 'elsewhere'
  work.mkdir()
  where = _run(python, '-c', 'import argenseg_jax; print(argenseg_jax.__file__)', cwd=work)
  assert pathlib.Path(where.strip()).is_relative_to(packages), where
  out = _run(env / 'bin' / 'argenseg', 'segment', '--out', 'mask.png', cwd=work)
  assert (work / 'mask.png').is_file() and 'mask IoU with' in out, out
  _run(env / 'bin' / 'argenseg', 'train', '--config', 'train_tiny:steps=2,samples=16',
       '--workdir', 'run', '--config.export=false', cwd=work)
  assert (work / 'run' / 'metrics.jsonl').is_file()
