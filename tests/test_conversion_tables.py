"""Conversion tables against the reference key listings and PyTorch's layouts, written
here by hand from the original modules' naming (not from our tables): each parameter must
come from the key its module path names, in the layout of its PyTorch module."""

import math

import jax
import numpy as np
import pytest

from argenseg_jax.checkpoints import conversion, layer_stacks, params
from argenseg_jax.config_args import load_config
from argenseg_jax.models import argenseg_io
from tests.conftest import reference_file
from tests.helpers import read_keys_tsv, scaled_listing

EXCUSED = 'image_tokenizer.quantize.ema_vocab_hit_SV'  # VQ statistics, unused
# Our module path prefix -> the PyTorch one (first match).
PREFIXES = (('vision/vision_model/', 'vision_model/'), ('vision/mlp1/norm/', 'mlp1/0/'),
            ('vision/mlp1/fc1/', 'mlp1/1/'), ('vision/mlp1/fc2/', 'mlp1/3/'),
            ('language_model/output', 'language_model/output'),
            ('language_model/', 'language_model/model/'),
            ('image_tokenizer/quantize/phi/', 'image_tokenizer/quantize/quant_resi/qresi_ls/'))
LEAVES = {'kernel': 'weight', 'scale': 'weight', 'embedding': 'weight', 'wq': 'wqkv.weight',
          'wk': 'wqkv.weight', 'wv': 'wqkv.weight',
          **{w: f'{w}.weight' for w in ('wo', 'w1', 'w2', 'w3', 'output')}}


def _source(path: str) -> str:
  """The checkpoint key of our parameter `path`."""
  for ours, theirs in PREFIXES:
    if path.startswith(ours):
      path = theirs + path[len(ours):]
      break
  *module, leaf = path.split('/')
  return '.'.join(module + [LEAVES.get(leaf, leaf)])


def _layout(path: str, w, llm):
  """Our parameter `path` from its PyTorch tensor `w` (numpy, or abstract under jax)."""
  xp = np if isinstance(w, np.ndarray) else jax.numpy
  leaf = path.rsplit('/', 1)[-1]
  if leaf in ('wq', 'wk', 'wv'):
    # wqkv rows: per kv group g, head_dim slices [q_{gG}, .., q_{gG+G-1}, k_g, v_g]
    kv, hd = llm.num_key_value_heads, llm.head_dim
    groups = llm.num_attention_heads // kv
    slots = {'wq': range(groups), 'wk': [groups], 'wv': [groups + 1]}[leaf]
    rows = [(g * (groups + 2) + s) * hd for g in range(kv) for s in slots]
    return xp.stack([w[r:r + hd].T for r in rows], axis=1)  # [D, heads, hd]
  if leaf == 'wo':  # Linear(H * hd -> D): [D, H * hd] -> [H, hd, D]
    return w.T.reshape(llm.num_attention_heads, llm.head_dim, -1)
  if len(w.shape) == 4:  # Conv2d [out, in, kh, kw] -> [kh, kw, in, out]
    return xp.einsum('oiyx->yxio', w)
  padding = -w.shape[0] % 128  # the vocabulary: zero rows up to a multiple of 128
  if leaf == 'output':  # Linear [V, D] -> [D, V padded]
    return xp.pad(w.T, ((0, 0), (0, padding)))
  if path.endswith('tok_embeddings/embedding'):
    return xp.pad(w, ((0, padding), (0, 0)))
  if leaf in ('kernel', 'w1', 'w2', 'w3'):  # Linear [out, in] -> [in, out]
    return w.T
  return w


def test_real_table_reads_each_parameter_from_its_torch_key():
  """The 8B table, from shapes only: our key for each parameter, every listed key used,
  and each transform giving the PyTorch layout's shape."""
  listing = read_keys_tsv(reference_file('argenseg-8b-keys.tsv'))
  cfg = load_config('argenseg:variant=8b')
  table = argenseg_io.conversion_table(cfg)
  assert {r.theirs for r in table} == set(listing) - {EXCUSED}
  for r in table:
    assert r.theirs == _source(r.ours), r
    shape = jax.ShapeDtypeStruct(listing[r.theirs], np.float32)
    want = jax.eval_shape(lambda w, p=r.ours: _layout(p, w, cfg.llm), shape).shape
    got = jax.eval_shape(lambda w, r=r: conversion.TRANSFORMS[r.transform](w, *r.args), shape)
    assert got.shape == want, r


@pytest.fixture(scope='module')
def tiny():
  """The tiny model loaded from a checkpoint with the listing's keys, every tensor a
  distinct range of numbers; returns (checkpoint, our parameters, cfg)."""
  cfg = load_config('argenseg:variant=tiny')
  shapes = scaled_listing(read_keys_tsv(reference_file('argenseg-8b-keys.tsv')), cfg)
  checkpoint, start = {}, 0
  for key in sorted(shapes):
    n = math.prod(shapes[key])
    checkpoint[key] = np.arange(start, start + n, dtype=np.float32).reshape(shapes[key])
    start += n
  assert start < 2 ** 24  # exact in float32
  model = argenseg_io.from_state_dict(checkpoint, cfg)
  return checkpoint, layer_stacks.unstack(params.flat_params(model)), cfg, model


def test_layers_are_stacked_in_order(tiny):
  """Each stack holds layer i at index i (the checkpoint's layer i)."""
  *_, cfg, model = tiny
  flat = params.flat_params(model)
  wo = np.asarray(flat['language_model/layers/attention/wo'])
  assert wo.shape[0] == cfg.llm.num_hidden_layers
  ln = np.asarray(flat['vision/vision_model/encoder/layers/norm1/scale'])
  assert ln.shape[0] == cfg.image.vision.num_hidden_layers
  assert not any('/layers/0/' in k for k in flat)
  checkpoint = tiny[0]
  for i in range(wo.shape[0]):
    np.testing.assert_array_equal(
        wo[i].reshape(-1, wo.shape[-1]),
        checkpoint[f'language_model.model.layers.{i}.attention.wo.weight'].T)


def test_export_gives_back_the_checkpoint(tiny):
  """Stacked parameters -> the original's per-layer keys and layouts, bit for bit."""
  checkpoint, _, cfg, model = tiny
  exported = params.to_state_dict(model, argenseg_io.conversion_table(cfg))
  assert set(exported) == set(checkpoint) - {EXCUSED}
  for key, value in exported.items():
    np.testing.assert_array_equal(value, checkpoint[key], err_msg=key)


def test_listing_checkpoint_lands_in_the_torch_layout(tiny):
  checkpoint, ours, cfg, _ = tiny
  assert {_source(p) for p in ours} == set(checkpoint) - {EXCUSED}
  for path, got in ours.items():
    want = _layout(path, checkpoint[_source(path)], cfg.llm)
    np.testing.assert_array_equal(np.asarray(got), np.asarray(want), err_msg=path)


def test_packed_wqkv_heads_by_hand(tiny):
  """Query head g*G + j of layer 1 is row block g*(G+2) + j of wqkv; k_g, v_g follow."""
  checkpoint, ours, cfg, _ = tiny
  w = checkpoint['language_model.model.layers.1.attention.wqkv.weight']
  kv, hd, groups = cfg.llm.num_key_value_heads, cfg.llm.head_dim, 2
  assert cfg.llm.num_attention_heads == kv * groups
  block = lambda i: w[i * hd:(i + 1) * hd].T  # [D, hd]
  attn = {k: np.asarray(ours[f'language_model/layers/1/attention/{k}'])
          for k in ('wq', 'wk', 'wv')}
  for g in range(kv):
    for j in range(groups):
      np.testing.assert_array_equal(attn['wq'][:, g * groups + j], block(g * 4 + j))
    np.testing.assert_array_equal(attn['wk'][:, g], block(g * 4 + 2))
    np.testing.assert_array_equal(attn['wv'][:, g], block(g * 4 + 3))
