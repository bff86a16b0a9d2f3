"""Loading VAR checkpoints and our format, with strict, explanatory errors."""

import numpy as np
import pytest
from flax import nnx

from argenseg_jax.checkpoints import conversion
from argenseg_jax.checkpoints.torch_files import CheckpointError
from argenseg_jax.config_args import load_config
from argenseg_jax.models import var_vqvae_io
from tests.conftest import golden_fixture
from tests.helpers import to_var_state_dict

torch = pytest.importorskip('torch')
pytestmark = pytest.mark.torch


def _flat_params(model):
  return conversion.flatten(nnx.to_pure_dict(nnx.state(model, nnx.Param)))


def _save_pth(path, sd):
  torch.save({k: torch.from_numpy(np.array(v)) for k, v in sd.items()}, path)
  return path


@pytest.fixture(scope='module')
def var_pth(tmp_path_factory, small_model):
  model, cfg = small_model
  sd = to_var_state_dict(model, cfg)
  return _save_pth(tmp_path_factory.mktemp('ckpt') / 'vae.pth', sd), sd


def test_pth_roundtrip_and_our_format(var_pth, small_model, tmp_path):
  model, cfg = small_model
  loaded, _ = var_vqvae_io.load_vqvae(var_pth[0], cfg)
  ours = _flat_params(model)
  for k, v in _flat_params(loaded).items():
    np.testing.assert_array_equal(np.asarray(v), np.asarray(ours[k]), err_msg=k)
  out = var_vqvae_io.save_vqvae(loaded, cfg, tmp_path / 'vae')
  assert sorted(p.name for p in out.iterdir()) == ['config.json', 'params.safetensors']
  again, stored_cfg = var_vqvae_io.load_vqvae(out)  # config read from the directory
  assert stored_cfg.to_dict() == cfg.to_dict()
  for k, v in _flat_params(again).items():
    np.testing.assert_array_equal(np.asarray(v), np.asarray(ours[k]), err_msg=k)
  var_vqvae_io.save_vqvae(loaded, cfg, tmp_path / 'vae')  # overwriting is safe too
  assert sorted(p.name for p in tmp_path.iterdir()) == ['vae']
  with pytest.raises(CheckpointError, match='differs from the requested'):
    var_vqvae_io.load_vqvae(out, load_config('var_vqvae'))


def test_wrong_config_names_the_checkpoint_config():
  pth = golden_fixture('var_vqvae') / 'vae.pth'  # ch=32, vocab 512
  with pytest.raises(CheckpointError) as err:
    var_vqvae_io.load_vqvae(pth, load_config('var_vqvae'))  # real: ch=160, vocab 4096
  assert 'encoder.conv_in.weight' in str(err.value)
  assert 'ch=32' in str(err.value) and 'vocab_size=512' in str(err.value)


def test_missing_and_unexpected_keys_are_named(var_pth, small_model, tmp_path):
  _, cfg = small_model
  sd = dict(var_pth[1])
  del sd['decoder.conv_out.bias']
  with pytest.raises(CheckpointError, match='decoder.conv_out.bias'):
    var_vqvae_io.load_vqvae(_save_pth(tmp_path / 'missing.pth', sd), cfg)
  sd = dict(var_pth[1], **{'encoder.extra.weight': np.zeros(3, np.float32)})
  with pytest.raises(CheckpointError, match='encoder.extra.weight'):
    var_vqvae_io.load_vqvae(_save_pth(tmp_path / 'extra.pth', sd), cfg)
  sd = dict(var_pth[1])
  sd['quant_conv.weight'] = sd['quant_conv.weight'][:, :, :1, :1]
  with pytest.raises(CheckpointError, match="'quant_conv.weight' has shape"):
    var_vqvae_io.load_vqvae(_save_pth(tmp_path / 'shape.pth', sd), cfg)


def test_bad_files(small_model, tmp_path):
  _, cfg = small_model
  with pytest.raises(FileNotFoundError, match='not found'):
    var_vqvae_io.load_vqvae(tmp_path / 'nope.pth', cfg)
  (tmp_path / 'corrupt.pth').write_bytes(b'not a checkpoint at all')
  with pytest.raises(CheckpointError, match='not a readable PyTorch'):
    var_vqvae_io.load_vqvae(tmp_path / 'corrupt.pth', cfg)
  torch.save({'model': {'w': torch.zeros(2)}}, tmp_path / 'nested.pth')
  with pytest.raises(CheckpointError, match='not a plain state_dict'):
    var_vqvae_io.load_vqvae(tmp_path / 'nested.pth', cfg)
  (tmp_path / 'empty_dir').mkdir()
  with pytest.raises(CheckpointError, match='no config.json'):
    var_vqvae_io.load_vqvae(tmp_path / 'empty_dir', cfg)
