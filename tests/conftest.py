"""Test setup: 8 fake CPU devices (set before jax is imported) and golden fixtures."""

import os
import pathlib

os.environ['XLA_FLAGS'] = (os.environ.get('XLA_FLAGS', '') +
                           ' --xla_force_host_platform_device_count=8').strip()

import pytest  # noqa: E402
from absl import flags  # noqa: E402

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


@pytest.fixture(scope='session')
def golden_checkpoint(tmp_path_factory):
  """Our checkpoint of the golden ARGenSeg model plus a sentencepiece model trained here whose
  ids stay below the fixture's 1000 text ids."""
  import json  # pylint: disable=import-outside-toplevel

  import sentencepiece as spm  # pylint: disable=import-outside-toplevel

  from argenseg_jax import pretrained  # pylint: disable=import-outside-toplevel
  from argenseg_jax.models import var_vqvae_io  # pylint: disable=import-outside-toplevel
  from tests.helpers import make_hf_dir  # pylint: disable=import-outside-toplevel
  root = tmp_path_factory.mktemp('argenseg')
  fixture = golden_fixture('argenseg')
  hf = make_hf_dir(fixture, root / 'hf')
  corpus = root / 'corpus.txt'
  corpus.write_text('\n'.join(['Please segment the red circle.', 'Sure, the result.'] * 50))
  spm.SentencePieceTrainer.train(
      input=str(corpus), model_prefix=str(hf / 'tokenizer'), vocab_size=300,
      hard_vocab_limit=False, model_type='bpe', byte_fallback=True, add_dummy_prefix=False,
      user_defined_symbols=['<|im_start|>', '<|im_end|>'], minloglevel=2)
  config = json.loads((fixture / 'config.json').read_text())
  vqvae = var_vqvae_io.config_from_var_kwargs(config['image_tokenizer_VQVAE_kwargs'], 256)
  return pretrained.convert_pretrained(hf, root / 'ours', vqvae_config=vqvae)


@pytest.fixture(scope='session')
def golden_segmenter(golden_checkpoint):
  """The golden ARGenSeg's `Segmenter`, 3 new tokens at most."""
  from argenseg_jax.sampler import SamplerConfig  # pylint: disable=import-outside-toplevel
  from argenseg_jax.segmenter import Segmenter  # pylint: disable=import-outside-toplevel
  return Segmenter.load(golden_checkpoint, sampler_config=SamplerConfig(max_new_tokens=3))


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
