"""`with_image_tokenizer`: a trained VQ-VAE replaces the frozen image tokenizer of a
fresh state, and nothing else."""

import functools

import jax
import numpy as np
import optax
import pytest
from flax import nnx

from argenseg_jax.config_args import load_config
from argenseg_jax.models.argenseg import ARGenSeg
from argenseg_jax.models.var_vqvae_io import init_vqvae
from argenseg_jax.sharding import make_mesh
from argenseg_jax.training import train_state


def _flat(state) -> dict:
  return {path: np.asarray(v.get_value() if hasattr(v, 'get_value') else v)
          for path, v in nnx.to_flat_state(state)}


def test_loads_the_tokenizer_into_the_frozen_part_only():
  cfg = load_config('argenseg:variant=tiny')
  ctor = functools.partial(ARGenSeg, cfg)
  tx = optax.sgd(0.1)
  mesh = make_mesh(devices=jax.devices()[:1])
  frozen = ('vision_model', 'image_tokenizer')
  lay = train_state.layout(ctor, tx, mesh, frozen)
  state = train_state.init_state(ctor, tx, lay, frozen, seed=0)
  vqvae = init_vqvae(cfg.vqvae, seed=7)
  loaded = train_state.with_image_tokenizer(state, lay, vqvae)
  want = _flat(nnx.state(vqvae))
  before, after = _flat(state.frozen), _flat(loaded.frozen)
  assert before.keys() == after.keys()
  for path, value in after.items():
    if path[0] == 'image_tokenizer':
      np.testing.assert_array_equal(value, want[path[1:]], err_msg=str(path))
    else:
      np.testing.assert_array_equal(value, before[path], err_msg=str(path))
  assert any(not np.array_equal(after[p], before[p]) for p in after if p[0] == 'image_tokenizer')
  assert jax.tree.structure(loaded) == jax.tree.structure(state)

  trainable = train_state.layout(ctor, tx, mesh, ('vision_model',))
  with pytest.raises(ValueError, match='image tokenizer is trainable'):
    train_state.with_image_tokenizer(trainable.abstract, trainable, vqvae)
