"""Test setup: 8 fake CPU devices (set before jax is imported) and golden fixtures."""

import os
import pathlib

os.environ['XLA_FLAGS'] = (os.environ.get('XLA_FLAGS', '') +
                           ' --xla_force_host_platform_device_count=8').strip()

from absl import flags  # noqa: E402
import pytest  # noqa: E402

# grain 0.2.18 reads absl flags in worker processes; mark them parsed (environment.md).
flags.FLAGS.mark_as_parsed()

REPO = pathlib.Path(__file__).resolve().parent.parent
SHARED = REPO.parent / 'shared'
GOLDEN = pathlib.Path(os.environ.get('ARGENSEG_GOLDEN_DIR', SHARED / 'golden'))
REFERENCE = pathlib.Path(os.environ.get('ARGENSEG_REFERENCE_DIR', SHARED / 'reference'))


def _missing(message: str):
  if os.environ.get('CI') == 'true':
    pytest.fail(message)
  pytest.skip(message)


def reference_file(name: str) -> pathlib.Path:
  """A file of `shared/reference` (checkpoint key lists); fails under CI=true if absent."""
  path = REFERENCE / name
  if not path.is_file():
    _missing(f'reference file {path} not found (set ARGENSEG_REFERENCE_DIR to the folder '
             'holding the key listings)')
  return path


def golden_fixture(name: str) -> pathlib.Path:
  """Path of a golden fixture folder; fails under CI=true when missing, else skips."""
  path = GOLDEN / name
  if not (path / 'fixture.json').is_file():
    _missing(f'golden fixture {path} not found (set ARGENSEG_GOLDEN_DIR to the folder '
             'holding the fixtures)')
  return path


@pytest.fixture(scope='session')
def small_model():
  """A randomly initialised small VQ-VAE `(model, cfg)` (64 px, scales 1,2,3,4)."""
  from argenseg_jax.models import var_vqvae_io  # pylint: disable=import-outside-toplevel
  from tests.helpers import small_vqvae_config  # pylint: disable=import-outside-toplevel
  cfg = small_vqvae_config()
  return var_vqvae_io.init_vqvae(cfg, seed=1), cfg


def _share_compilations():
  """One persistent XLA compilation cache for the test session and the subprocesses it
  starts (training tests compile the same init and step programs several times)."""
  import tempfile  # pylint: disable=import-outside-toplevel
  import jax  # pylint: disable=import-outside-toplevel
  cache = os.environ.setdefault('JAX_COMPILATION_CACHE_DIR',
                                tempfile.mkdtemp(prefix='argenseg-jax-cache-'))
  os.environ.setdefault('JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS', '1')
  jax.config.update('jax_compilation_cache_dir', cache)
  jax.config.update('jax_persistent_cache_min_compile_time_secs', 1.0)


_share_compilations()
