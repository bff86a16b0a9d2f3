"""The visual loss's weighting (`ARGenSeg.slot_weights`): the original's mean over
tokens, or every scale of a mask weighing the same (`visual_loss='scales'`)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from argenseg_jax.config_args import load_config
from argenseg_jax.layers.losses import masked_cross_entropy
from argenseg_jax.models.argenseg import ARGenSeg


@pytest.fixture(scope='module')
def models():
  cfg = load_config('argenseg:variant=tiny')  # scales 1, 2, 3, 4: 30 slots per mask
  scales = cfg.copy_and_resolve_references()
  scales.visual_loss = 'scales'
  return ARGenSeg(cfg, nnx.Rngs(0)), ARGenSeg(scales, nnx.Rngs(0))


def test_every_scale_of_every_mask_weighs_the_same(models):
  tokens, scales = models
  assert tokens.slot_weights(jnp.ones((1, 4), bool)) is None
  is_gen = np.zeros((2, 80), bool)
  is_gen[0, 5:35] = is_gen[0, 40:70] = True  # two masks in row 0
  is_gen[1, 10:40] = True
  w = np.asarray(scales.slot_weights(jnp.asarray(is_gen)))
  first = w[0, 5:35]
  expected = np.repeat([1, 1 / 4, 1 / 9, 1 / 16], [1, 4, 9, 16])
  np.testing.assert_allclose(first, expected, rtol=1e-6)
  np.testing.assert_allclose(w[0, 40:70], expected, rtol=1e-6)
  np.testing.assert_allclose(w[1, 10:40], expected, rtol=1e-6)


def test_weighted_cross_entropy_is_the_weighted_mean():
  logits = jax.random.normal(jax.random.key(0), (6, 5))
  labels = jnp.array([0, 1, 2, 3, 4, 0])
  select = jnp.array([True, True, False, True, True, False])
  weights = jnp.array([1.0, 0.25, 9.0, 0.25, 2.0, 7.0])
  nll = -jax.nn.log_softmax(logits)[jnp.arange(6), labels]
  keep = np.asarray(select)
  expected = float((nll * weights)[keep].sum() / weights[keep].sum())
  assert float(masked_cross_entropy(logits, labels, select, weights)) == pytest.approx(expected)
  assert float(masked_cross_entropy(logits, labels, select)) == pytest.approx(
      float(nll[keep].mean()))
  with pytest.raises(ValueError, match="visual_loss must be"):
    cfg = load_config('argenseg:variant=tiny')
    cfg.visual_loss = 'pixels'
    ARGenSeg(cfg, nnx.Rngs(0))
