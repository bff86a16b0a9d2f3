"""Streaming `convert_pretrained` against the in-memory path, on a synthetic multi-shard
bfloat16 checkpoint converted in several orbax groups and row blocks; its keys and shapes
come from the ARGenSeg-8B key listing, not from our conversion table."""

import collections
import functools
import json

import jax
import ml_dtypes
import numpy as np
import orbax.checkpoint as ocp
import pytest
from flax import nnx

from argenseg_jax import pretrained, sharding
from argenseg_jax.checkpoints import conversion, hf_dir, params, streaming, synthetic
from argenseg_jax.checkpoints.torch_files import CheckpointError
from argenseg_jax.config_args import load_config
from argenseg_jax.models import argenseg_io
from argenseg_jax.models.argenseg import ARGenSeg
from tests.conftest import reference_file
from tests.helpers import read_keys_tsv, scaled_listing

WQKV = 'language_model.model.layers.0.attention.wqkv.weight'


@pytest.fixture(scope='module')
def cfg():
  cfg = load_config('argenseg:variant=tiny')
  cfg.llm.num_hidden_layers = 4
  return cfg


@pytest.fixture(scope='module')
def hf(cfg, tmp_path_factory):
  shapes = scaled_listing(read_keys_tsv(reference_file('argenseg-8b-keys.tsv')), cfg)
  return synthetic.write_hf_dir(cfg, tmp_path_factory.mktemp('hf'), shards=3,
                                dtype=ml_dtypes.bfloat16, shapes=shapes)


@pytest.fixture(scope='module')
def abstract(cfg):
  return params.abstract(functools.partial(ARGenSeg, cfg))


@pytest.fixture(scope='module')
def old_params(cfg, hf, abstract, tmp_path_factory):
  """What the old path (whole state dict and model in memory, one orbax save) restores."""
  model, loaded_cfg = pretrained.load_pretrained(hf, vqvae_config=cfg.vqvae)
  out = pretrained.save_pretrained(model, loaded_cfg, tmp_path_factory.mktemp('old') / 'o',
                                   tokenizer_dir=hf)
  return _restore(out, abstract), params.flat_params(model), out


def _restore(ckpt, abstract) -> dict:
  """`{path: array}` as `load_pretrained(ckpt)` restores it (same orbax call)."""
  target = nnx.to_pure_dict(nnx.state(abstract, nnx.Param))
  return conversion.flatten(ocp.StandardCheckpointer().restore(ckpt / 'params', target))


@pytest.fixture
def small_pieces(hf, monkeypatch):
  """Groups of a quarter of the checkpoint and 16 KiB row blocks; counts full reads."""
  total = sum(t.nbytes for t in hf_dir.open_weights(hf).values())
  monkeypatch.setattr(streaming, 'MIN_GROUP_BYTES', total // 4)
  monkeypatch.setattr(conversion, 'BLOCK_BYTES', 16384)
  reads = collections.Counter()
  full_read = hf_dir.LazyTensor.__array__

  def counted(self, *args, **kwargs):
    reads[self.key] += 1
    return full_read(self, *args, **kwargs)
  monkeypatch.setattr(hf_dir.LazyTensor, '__array__', counted)
  return reads


def _assert_same(got: dict, want: dict):
  assert got.keys() == want.keys()
  for k in want:
    assert np.asarray(got[k]).dtype == np.asarray(want[k]).dtype, k
    np.testing.assert_array_equal(np.asarray(got[k]), np.asarray(want[k]), err_msg=k)


def test_streaming_equals_in_memory_conversion(cfg, hf, old_params, small_pieces, tmp_path):
  out = pretrained.convert_pretrained(hf, tmp_path / 's', vqvae_config=cfg.vqvae)
  assert small_pieces[WQKV] == 1 and max(small_pieces.values()) == 1  # packed: read once
  assert len(list((out / 'params').glob('ocdbt.process_*'))) >= 4  # written in groups
  assert sorted(p.name for p in tmp_path.iterdir()) == ['s']  # no staging left behind
  restored_old, in_memory, old_dir = old_params
  model, _ = pretrained.load_pretrained(out)
  assert (out / 'argenseg.json').read_text() == (old_dir / 'argenseg.json').read_text()
  streamed = params.flat_params(model)
  _assert_same(streamed, restored_old)
  for k, v in in_memory.items():  # bfloat16 as read, float32 as restored
    np.testing.assert_array_equal(np.asarray(streamed[k]), np.asarray(v, np.float32), err_msg=k)
  tree = json.loads((out / 'params' / '_METADATA').read_text())['tree_metadata']
  assert tree.keys() == json.loads((old_dir / 'params' / '_METADATA').read_text())[
      'tree_metadata'].keys()
  assert (out / 'added_tokens.json').read_text() == (hf / 'added_tokens.json').read_text()


@pytest.mark.slow
def test_streaming_onto_a_mesh(cfg, hf, abstract, old_params, tmp_path):
  mesh = sharding.make_mesh(fsdp=2, tensor=2, devices=jax.devices()[:4])
  out = pretrained.convert_pretrained(hf, tmp_path / 'm', vqvae_config=cfg.vqvae, mesh=mesh)
  _assert_same(_restore(out, abstract), old_params[0])


def test_wrong_vqvae_config_is_named_and_nothing_written(cfg, hf, tmp_path):
  vqvae = cfg.vqvae.copy_and_resolve_references()
  vqvae.ch = 64
  with pytest.raises(CheckpointError, match='made for ch=32 but the config has ch=64'):
    pretrained.convert_pretrained(hf, tmp_path / 'out', vqvae_config=vqvae)
  assert not list(tmp_path.iterdir())


@pytest.mark.parametrize('key, change, match', [
    ('mlp1.1.bias', lambda a: a[:-1], "'mlp1.1.bias' has shape"),
    (WQKV, lambda a: a[:-1], "'packed_qkv' cannot convert"),
    ('language_model.extra.weight', lambda a: np.zeros(3), 'does not use'),
    ('mlp1.1.bias', None, r"lacks 1 key\(s\), e.g. \['mlp1.1.bias'\]"),
])
def test_lazy_conversion_is_as_strict(cfg, hf, abstract, key, change, match):
  weights = hf_dir.open_weights(hf)
  if change is None:
    del weights[key]
  else:
    weights[key] = change(np.asarray(weights[key]) if key in weights else None)
  with pytest.raises(CheckpointError, match=match):
    conversion.convert_lazily(argenseg_io.conversion_table(cfg), weights,
                              params.shapes(abstract))
