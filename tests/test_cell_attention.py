"""The cell-matching start of the small model's first-layer heads
(`argenseg_jax/models/cell_attention.py`): at step 0 a mask slot of the final scale
already looks at the image token of its own cell."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from argenseg_jax import example_spec
from argenseg_jax.config_args import load_config
from argenseg_jax.layers import stack
from argenseg_jax.layers.rope import apply_rope
from argenseg_jax.models import cell_attention
from argenseg_jax.models.argenseg import ARGenSeg
from argenseg_jax.tokenizer import scratch_tokenizer
from data_pipelines import train_pipeline
from data_pipelines.synthetic_scenes import SyntheticScenes


def test_slow_dims_turn_little_over_the_span():
  dims = cell_attention.slow_dims(32, 1e6, 0.3, 460)
  assert len(dims) % 4 == 0 and len(dims) > 0
  inv = 1.0 / 1e6 ** (np.arange(0, 32, 2) / 32)
  pairs = dims[:len(dims) // 2]
  assert np.all(inv[pairs] * 460 < 0.3) and np.array_equal(dims[len(dims) // 2:], pairs + 16)
  assert len(cell_attention.slow_dims(32, 1e6, 0.3, 10 ** 9)) == 0  # every pair turns


def _first_layer_attention(cfg) -> tuple[np.ndarray, np.ndarray, int]:
  """Head 0's attention `[L, L]` of one synthetic example at init, the positions of its
  image tokens, and of its `<ge_start>` (init and forward in one compiled program)."""
  spec = example_spec.spec_for(cfg, length_buckets=(232,))
  batch = train_pipeline.pad_batch([train_pipeline.EncodeExample(scratch_tokenizer(cfg), spec)
                                    .map(SyntheticScenes(2, seed=1)[0])], spec)
  inputs = [jnp.asarray(batch[k]) for k in
            ('ids', 'labels', 'pixels', 'image_flags', 'masks', 'mask_flags')]

  @jax.jit
  def probs(inputs):
    model = ARGenSeg(cfg, nnx.Rngs(0))
    embeds, _ = model.train_inputs(*inputs)
    layer = stack.layer(model.language_model.layers, 0)
    x = layer.attention_norm(embeds)
    positions = jnp.arange(x.shape[1])[None]
    q, k = (apply_rope(jnp.einsum('bld,dhk->blhk', x, w[...]), positions, layer.attention.theta)
            for w in (layer.attention.wq, layer.attention.wk))
    scores = jnp.einsum('lk,tk->lt', q[0, :, 0], k[0, :, 0]) / np.sqrt(q.shape[-1])
    causal = np.tril(np.ones(scores.shape, bool))
    return jax.nn.softmax(jnp.where(causal, scores, -jnp.inf), -1)

  ids = batch['ids'][0]
  return (np.asarray(probs(inputs)), np.flatnonzero(ids == cfg.img_context_token_id),
          int(np.flatnonzero(ids == cfg.tokens.gen_start_token_id)[0]))


@pytest.mark.parametrize('cell_heads', [1, 0])
def test_final_scale_slots_start_looking_at_their_own_cell(cell_heads):
  cfg = load_config(f'argenseg:variant=small,cell_heads={cell_heads}')
  probs, image, ge_start = _first_layer_attention(cfg)
  first_final = 130 - 64  # slot k (input at ge_start + k) draws visual token k
  rows = ge_start + first_final + np.arange(64)
  own = probs[rows, image].mean()
  others = np.mean([probs[r, np.delete(image, c)].mean() for c, r in enumerate(rows)])
  if cell_heads:
    assert own > 5 * others  # about 0.05 against 0.003
  else:
    assert own < 2 * others


def test_cell_heads_need_the_sine_cosine_tables():
  with pytest.raises(ValueError, match='cell_heads needs'):
    nnx.eval_shape(lambda: ARGenSeg(load_config('argenseg:variant=small,token_pos=none'),
                                    nnx.Rngs(0)))
