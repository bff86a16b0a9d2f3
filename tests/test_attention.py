"""Attention kernels by config, the chunked loss and the padded vocabulary."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from argenseg_jax import sharding
from argenseg_jax.checkpoints import conversion, params
from argenseg_jax.checkpoints.torch_files import CheckpointError
from argenseg_jax.layers import attention, losses
from argenseg_jax.models import internlm2_io
from argenseg_jax.models.internlm2 import InternLM2, padded_vocab_size

B, L, H, KV, HD = 2, 128, 4, 2, 32


def _inputs():
  r = np.random.default_rng(0)
  q = jnp.asarray(r.normal(size=(B, L, H, HD)), jnp.float32)
  k, v = (jnp.asarray(r.normal(size=(B, L, KV, HD)), jnp.float32) for _ in range(2))
  token_mask = jnp.asarray(np.arange(L)[None] >= np.array([[0], [40]]))  # row 1 left-padded
  neg = jnp.finfo(jnp.float32).min
  causal = jnp.where(jnp.arange(L)[None, :] > jnp.arange(L)[:, None], neg, 0.0)
  bias = (causal[None] + jnp.where(token_mask, 0.0, neg)[:, None, :])[:, None]
  return q, k, v, token_mask, bias


def _reference(q, k, v, bias):
  """Grouped-query attention written out: query head g*G + j reads kv head g."""
  groups = q.shape[2] // k.shape[2]
  kr, vr = (jnp.repeat(t, groups, axis=2) for t in (k, v))
  scores = jnp.einsum('bqhd,bkhd->bhqk', q, kr) / q.shape[-1] ** 0.5 + bias
  return jnp.einsum('bhqk,bkhd->bqhd', jax.nn.softmax(scores, axis=-1), vr)


def test_xla_matches_the_written_out_attention():
  q, k, v, _, bias = _inputs()
  np.testing.assert_allclose(attention.attend(q, k, v, bias), _reference(q, k, v, bias),
                             atol=2e-6)
  with pytest.raises(ValueError, match='attention must be one of'):
    attention.attend(q, k, v, bias, implementation='flash')


def test_splash_gives_real_tokens_the_same_keys():
  """Splash (Pallas, run interpreted off TPU), alone and sharded over batch and heads
  under a mesh: every real query as XLA's; padded queries are left free."""
  q, k, v, token_mask, bias = _inputs()
  want = np.asarray(attention.attend(q, k, v, bias))
  real = np.asarray(token_mask)
  splash = functools.partial(attention.attend, implementation='splash', token_mask=token_mask)
  np.testing.assert_allclose(np.asarray(splash(q, k, v, bias))[real], want[real], atol=1e-5)
  mesh = sharding.make_mesh(data=1, fsdp=2, tensor=2, devices=jax.devices()[:4])
  with jax.set_mesh(mesh):
    got = jax.jit(splash)(q, k, v, bias)
  np.testing.assert_allclose(np.asarray(got)[real], want[real], atol=1e-5)


def test_chunked_loss_matches_the_whole_loss():
  """Value and gradient of the chunked per-token NLL equal the one-shot ones, for a
  length that the chunk does not divide."""
  r = np.random.default_rng(1)
  hidden = jnp.asarray(r.normal(size=(2, 11, 8)), jnp.float32)
  head = jnp.asarray(r.normal(size=(8, 24)), jnp.float32)
  labels = jnp.asarray(r.integers(0, 20, size=(2, 11)), jnp.int32)

  def total(h, w, chunk):
    nll = losses.chunked_nll(lambda x: jnp.einsum('bld,dv->blv', x, w), h, labels, chunk)
    return jnp.sum(nll * jnp.arange(11.0))
  for chunk in (4, 11, 64):
    np.testing.assert_allclose(total(hidden, head, chunk), total(hidden, head, 1000), rtol=1e-6)
    grads = jax.grad(total, argnums=(0, 1))(hidden, head, chunk)
    want = jax.grad(total, argnums=(0, 1))(hidden, head, 1000)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6),
                 grads, want)


def test_vocabulary_is_padded_and_masked():
  cfg = internlm2_io.config_from_hf(dict(
      vocab_size=50, hidden_size=32, intermediate_size=48, num_hidden_layers=1,
      num_attention_heads=4, num_key_value_heads=2, bias=False, max_position_embeddings=64))
  model = params.init(functools.partial(InternLM2, cfg), seed=0)
  assert padded_vocab_size(50) == 128 and padded_vocab_size(96653) == 96768
  assert model.output.shape == (32, 128) and model.tok_embeddings.embedding.shape == (128, 32)
  np.testing.assert_array_equal(model.output[:, 50:], 0)  # padding starts at zero
  np.testing.assert_array_equal(model.tok_embeddings.embedding[50:], 0)
  hidden = jax.random.normal(jax.random.key(0), (1, 3, 32))
  logits, padded = model.logits(hidden), model.padded_logits(hidden)
  assert logits.shape == (1, 3, 50) and padded.shape == (1, 3, 128)
  np.testing.assert_allclose(padded[..., :50], logits, rtol=1e-6)
  assert np.all(np.isneginf(padded[..., 50:]))
  assert model.logits(hidden, -10).shape == (1, 3, 10)
  np.testing.assert_allclose(model.logits(hidden, -10), logits[..., 40:], rtol=1e-6)


def test_splash_in_the_decoder_matches_xla():
  """The decoder with `attention='splash'` (a whole sequence from an empty cache: the
  training forward) gives the real tokens XLA's logits, right- and left-padded rows."""
  cfg = internlm2_io.config_from_hf(dict(
      vocab_size=50, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
      num_attention_heads=4, num_key_value_heads=2, bias=False, max_position_embeddings=512))
  model = params.init(functools.partial(InternLM2, cfg), seed=0)
  cfg.attention = 'splash'
  splash = nnx.merge(nnx.graphdef(params.abstract(functools.partial(InternLM2, cfg))),
                     nnx.state(model))
  ids = jax.random.randint(jax.random.key(0), (2, L), 0, 50)
  mask = (jnp.arange(L)[None] < jnp.array([[L], [100]])).at[0, :7].set(False)
  positions = jnp.maximum(jnp.cumsum(mask, 1) - 1, 0)

  @nnx.jit
  def logits(m):
    hidden, _ = m(m.embed(ids), positions, mask, m.empty_cache(2, L))
    return m.logits(hidden)
  real = np.asarray(mask)
  np.testing.assert_allclose(np.asarray(logits(splash))[real], np.asarray(logits(model))[real],
                             atol=1e-5)


def test_splash_refuses_lengths_off_its_blocks():
  q, k, v, token_mask, bias = _inputs()
  with pytest.raises(ValueError, match='multiple of 128'):
    attention.attend(q[:, :100], k[:, :100], v[:, :100], bias[..., :100, :100],
                     implementation='splash', token_mask=token_mask[:, :100])


def test_vocabulary_transforms_check_the_rows():
  """A checkpoint of another vocabulary is refused even when it pads to the same size."""
  rule = conversion.Rule('embedding', 'tok.weight', 'pad_rows', (50, 128))
  with pytest.raises(CheckpointError, match='cannot convert'):
    conversion.check([rule], {'tok.weight': np.zeros((60, 8))}, {'embedding': (128, 8)})
  conversion.check([rule], {'tok.weight': np.zeros((50, 8))}, {'embedding': (128, 8)})
