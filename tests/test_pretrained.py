"""Loading ARGenSeg from Hugging Face-style directories and our orbax format."""

import json
import os

import numpy as np
import orbax.checkpoint as ocp
import pytest

from argenseg_jax import bundled, pretrained
from argenseg_jax.checkpoints import layer_stacks, params
from argenseg_jax.checkpoints.torch_files import CheckpointError, read_safetensors
from argenseg_jax.models import argenseg_io, var_vqvae_io
from tests.conftest import golden_fixture
from tests.helpers import make_hf_dir


@pytest.fixture(scope='module')
def fixture_vqvae():
  config = json.loads((golden_fixture('argenseg') / 'config.json').read_text())
  return var_vqvae_io.config_from_var_kwargs(config['image_tokenizer_VQVAE_kwargs'], 256)


@pytest.fixture
def hf_dir(tmp_path):
  return make_hf_dir(golden_fixture('argenseg'), tmp_path / 'hf')


def test_sharded_hf_dir_and_our_format_load_the_same_weights(hf_dir, fixture_vqvae, tmp_path):
  model, cfg = pretrained.load_pretrained(hf_dir, vqvae_config=fixture_vqvae)
  assert cfg.tokens.visual_token_base == 1013 and cfg.tokens.gen_start_token_id == 1010
  direct = argenseg_io.from_state_dict(
      read_safetensors(golden_fixture('argenseg') / 'model.safetensors'), cfg)
  ours = pretrained.save_pretrained(model, cfg, tmp_path / 'ours')
  one_file = pretrained.save_pretrained(model, cfg, tmp_path / 'one_file',
                                        params_format='safetensors')
  assert sorted(p.name for p in one_file.iterdir()) == ['argenseg.json', 'params.safetensors']
  restored, restored_cfg = pretrained.load_pretrained(ours)
  from_file, file_cfg = pretrained.load_pretrained(one_file)
  assert restored_cfg.to_dict() == file_cfg.to_dict() == cfg.to_dict()
  want = params.flat_params(direct)
  for got in (params.flat_params(model), params.flat_params(restored),
              params.flat_params(from_file)):
    assert got.keys() == want.keys()
    for k in want:
      np.testing.assert_array_equal(np.asarray(got[k]), np.asarray(want[k]), err_msg=k)


@pytest.fixture(scope='module')
def bundled_model():
  """The bundled small ARGenSeg `(model, cfg)` (read, not compiled)."""
  return pretrained.load_pretrained(bundled.ARGENSEG_SMALL)


def test_one_file_format_checks_every_key(tmp_path, bundled_model):
  from safetensors.numpy import save_file  # pylint: disable=import-outside-toplevel
  model, cfg = bundled_model
  out = pretrained.save_pretrained(model, cfg, tmp_path / 'm', params_format='safetensors')
  flat = read_safetensors(out / pretrained.SAFETENSORS_FILE)
  key = 'word_embed/kernel'
  save_file({**flat, key: flat[key][:1]}, str(out / pretrained.SAFETENSORS_FILE))
  with pytest.raises(CheckpointError, match=key):
    pretrained.load_pretrained(out)
  save_file({k: v for k, v in flat.items() if k != key}, str(out / pretrained.SAFETENSORS_FILE))
  with pytest.raises(CheckpointError, match=key):
    pretrained.load_pretrained(out)
  with pytest.raises(ValueError, match='params_format'):
    pretrained.save_pretrained(model, cfg, tmp_path / 'x', params_format='pickle')


def test_errors_name_the_problem(hf_dir, fixture_vqvae, tmp_path):
  with pytest.raises(FileNotFoundError, match='not found'):
    pretrained.load_pretrained(tmp_path / 'missing')
  with pytest.raises(CheckpointError, match='ch=32'):  # default tokenizer config is ch=160
    pretrained.load_pretrained(hf_dir)
  os.remove(hf_dir / 'model-00002-of-00002.safetensors')
  with pytest.raises(CheckpointError, match='lacks 1 of the 2 shards'):
    pretrained.load_pretrained(hf_dir, vqvae_config=fixture_vqvae)
  os.remove(hf_dir / 'added_tokens.json')
  with pytest.raises(CheckpointError, match='no tokenizer files'):
    pretrained.load_pretrained(hf_dir, vqvae_config=fixture_vqvae)
  config = json.loads((hf_dir / 'config.json').read_text())
  (hf_dir / 'config.json').write_text(json.dumps(dict(config, architectures=['LlamaForCausalLM'])))
  with pytest.raises(CheckpointError, match='LlamaForCausalLM'):
    pretrained.load_pretrained(hf_dir, vqvae_config=fixture_vqvae)


def test_misshaped_key_and_missing_tokenizer(fixture_vqvae, tmp_path):
  out = make_hf_dir(golden_fixture('argenseg'), tmp_path / 'one', shards=1)
  from safetensors.numpy import save_file  # pylint: disable=import-outside-toplevel
  shard = out / 'model-00001-of-00001.safetensors'
  weights = read_safetensors(shard)
  weights['mlp1.1.bias'] = weights['mlp1.1.bias'][:-1]
  save_file(weights, str(shard))
  with pytest.raises(CheckpointError, match="'mlp1.1.bias' has shape"):
    pretrained.load_pretrained(out, vqvae_config=fixture_vqvae)
  del weights['mlp1.1.bias']
  weights = {k: v for k, v in weights.items() if not k.startswith('image_tokenizer.')}
  save_file(weights, str(shard))
  index = json.loads((out / 'model.safetensors.index.json').read_text())
  index['weight_map'] = {k: v for k, v in index['weight_map'].items() if k in weights}
  (out / 'model.safetensors.index.json').write_text(json.dumps(index))
  with pytest.raises(CheckpointError, match='no image_tokenizer'):
    pretrained.load_pretrained(out, vqvae_config=fixture_vqvae)


def test_cli_convert_model(hf_dir, tmp_path, capsys):
  from argenseg_jax import cli  # pylint: disable=import-outside-toplevel
  spec = 'var_vqvae:ch=32,vocab_size=4096'
  assert cli.main(['convert', 'model', '--from', str(hf_dir), '--to', str(tmp_path / 'o'),
                   '--config', spec]) == 0
  assert (tmp_path / 'o' / 'argenseg.json').is_file()
  assert cli.main(['convert', 'model', '--from', str(tmp_path / 'nope'), '--to',
                   str(tmp_path / 'p')]) == 2
  assert 'not found' in capsys.readouterr().err
  # and back: the released layout, every tensor as the source directory holds it
  assert cli.main(['convert', 'hf', '--from', str(tmp_path / 'o'), '--to',
                   str(tmp_path / 'e')]) == 0
  exported = read_safetensors(tmp_path / 'e' / 'model.safetensors')
  source = {}
  for shard in sorted(hf_dir.glob('*.safetensors')):
    source.update(read_safetensors(shard))
  unused = {f'image_tokenizer.{k}' for k in var_vqvae_io.EXCUSED_KEYS}
  assert set(exported) == set(source) - unused
  for key, value in exported.items():
    np.testing.assert_array_equal(value, source[key], err_msg=key)
  assert cli.main(['convert', 'hf', '--from', str(tmp_path / 'o'), '--to',
                   str(tmp_path / 'o')]) == 2  # never over our own checkpoint


def test_a_checkpoint_written_before_the_layer_stacks_loads(tmp_path, bundled_model):
  """Our directory as written before the layer stacks and the vocabulary padding (one
  entry per layer, `[V, D]` head rows) loads into the same parameters; a directory
  whose tree is something else is still refused as unreadable."""
  model, cfg = bundled_model
  flat = layer_stacks.unstack({k: np.asarray(v) for k, v in params.flat_params(model).items()})
  vocab = cfg.llm.vocab_size
  flat['language_model/output'] = flat['language_model/output'][:, :vocab]
  flat['language_model/tok_embeddings/embedding'] = (
      flat['language_model/tok_embeddings/embedding'][:vocab])
  old = tmp_path / 'old'
  old.mkdir()
  (old / pretrained.META_FILE).write_text((bundled.ARGENSEG_SMALL / pretrained.META_FILE)
                                          .read_text())
  checkpointer = ocp.StandardCheckpointer()
  checkpointer.save(old / 'params', flat)
  checkpointer.wait_until_finished()
  loaded, _ = pretrained.load_pretrained(old)
  want = params.flat_params(model)
  for key, value in params.flat_params(loaded).items():
    np.testing.assert_array_equal(value, want[key], err_msg=key)
  checkpointer.save(tmp_path / 'other' / 'params', {'w': np.zeros(3)})
  checkpointer.wait_until_finished()
  (tmp_path / 'other' / pretrained.META_FILE).write_text(
      (bundled.ARGENSEG_SMALL / pretrained.META_FILE).read_text())
  with pytest.raises(CheckpointError, match='cannot be read'):
    pretrained.load_pretrained(tmp_path / 'other')
