"""2D sine-cosine position tables and the from-scratch init switches that use them."""

import jax
import numpy as np
import pytest

from argenseg_jax.checkpoints import params
from argenseg_jax.config_args import load_config
from argenseg_jax.layers import posemb
from argenseg_jax.models.argenseg import ARGenSeg


def test_sincos_2d_values():
  ys, xs = posemb.grid_points(2, 8)  # centres 2 and 6 of an 8-unit frame
  np.testing.assert_allclose(ys, [2, 2, 6, 6])
  np.testing.assert_allclose(xs, [2, 6, 2, 6])
  emb = np.asarray(posemb.sincos_2d(ys, xs, 8))  # frequencies 1 and 1/100
  np.testing.assert_allclose(emb[1], [np.sin(6), np.sin(0.06), np.cos(6), np.cos(0.06),
                                      np.sin(2), np.sin(0.02), np.cos(2), np.cos(0.02)],
                             rtol=1e-6)
  with pytest.raises(ValueError, match='divisible by 4'):
    posemb.sincos_2d(ys, xs, 6)


def _init_tables(cfg) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """`(pos_1LC, the ViT's position table, word_embed kernel)` as a fresh ARGenSeg
  initialises them (one program that XLA prunes to these three)."""
  def tables():
    model = ARGenSeg(cfg, params.init_rngs(0))
    return (model.pos_1LC[...], model.vision.vision_model.embeddings.position_embedding[...],
            model.word_embed.kernel[...])
  return tuple(np.asarray(t) for t in jax.jit(tables)())


def test_from_scratch_init_uses_sincos_tables_and_the_default_does_not():
  cfg = load_config('argenseg:variant=tiny')  # the original's init; `small` switches both
  assert load_config('argenseg:variant=small').slot_init == 'sincos2d'
  scratch = cfg.copy_and_resolve_references()
  scratch.slot_init = 'sincos2d'
  scratch.image.vision.posemb_init = 'sincos2d'
  pos, vit, _ = _init_tables(scratch)
  pos = pos[0]
  # every scale's cells share one frame with the last (4x4) scale's cells: the 1x1 cell
  # sits at the centre (2, 2), the first 2x2 cell at (1, 1)
  want = posemb.sincos_2d(np.array([2.0, 1.0]), np.array([2.0, 1.0]), pos.shape[1])
  np.testing.assert_allclose(pos[:2], want, atol=1e-6)
  vit = vit[0]
  np.testing.assert_allclose(vit[0], 0)  # the class token's
  np.testing.assert_allclose(
      vit[1:3], posemb.sincos_2d(np.array([0.5, 0.5]), np.array([0.5, 1.5]), vit.shape[1]),
      atol=1e-6)
  pos, _, word_embed = _init_tables(cfg)
  assert not pos.any()  # zeros, as the original
  assert not word_embed.any()
