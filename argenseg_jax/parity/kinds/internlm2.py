"""Runs our InternLM2 on an `internlm2` fixture: full forward, loss, prefill + cached steps."""

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from argenseg_jax.checkpoints.torch_files import read_safetensors
from argenseg_jax.layers.losses import shifted_cross_entropy
from argenseg_jax.models import internlm2_io


def run(fixture, wanted) -> dict[str, np.ndarray]:
  cfg = internlm2_io.config_from_hf(fixture.config['ctor_kwargs'])
  model = internlm2_io.from_state_dict(read_safetensors(fixture.weights[0]), cfg)
  graphdef, state = nnx.split(model)
  ids = jnp.asarray(fixture.inputs['input_ids'], jnp.int32)
  mask = jnp.asarray(fixture.inputs['attention_mask']).astype(bool)
  b, n = ids.shape

  @jax.jit
  def forward(state, ids, positions, mask, cache):
    m = nnx.merge(graphdef, state)
    hidden, cache = m(m.embed(ids), positions, mask, cache)
    return hidden, m.logits(hidden), cache

  def arange(start, length):
    return jnp.broadcast_to(jnp.arange(start, start + length, dtype=jnp.int32), (b, length))

  out = {}
  hidden, logits, _ = forward(state, ids, arange(0, n), mask, model.empty_cache(b, n))
  out.update(last_hidden_state=np.asarray(hidden), logits=np.asarray(logits))
  labels = jnp.where(mask, ids, -100)
  out['loss'] = np.asarray(shifted_cross_entropy(logits, labels), np.float32).reshape(1)
  if wanted('logits_posid_from_mask'):
    positions = jnp.asarray(fixture.inputs['position_ids_from_mask'], jnp.int32)
    out['logits_posid_from_mask'] = np.asarray(
        forward(state, ids, positions, mask, model.empty_cache(b, n))[1])
  if any(wanted(p) for p in ('prefill_', 'logits_prefill', 'logits_cached')):
    # the reference's prefill length; the remaining tokens are one-token steps
    prefill = fixture.outputs['logits_prefill'].shape[1]
    cache = model.empty_cache(b, n)
    _, prefill_logits, cache = forward(state, ids[:, :prefill], arange(0, prefill),
                                       mask[:, :prefill], cache)
    for layer in range(cfg.num_hidden_layers):  # [B, T, KV, hd] -> [B, KV, T, hd]
      out[f'prefill_k_layer{layer}'] = np.asarray(cache.k[layer, :, :prefill]).transpose(0, 2, 1, 3)
      out[f'prefill_v_layer{layer}'] = np.asarray(cache.v[layer, :, :prefill]).transpose(0, 2, 1, 3)
    steps = [prefill_logits]
    for t in range(prefill, n):
      _, step_logits, cache = forward(state, ids[:, t:t + 1], arange(t, 1), mask[:, t:t + 1], cache)
      steps.append(step_logits)
    out['logits_prefill'] = np.asarray(prefill_logits)
    out['logits_cached'] = np.asarray(jnp.concatenate(steps, axis=1))
  return out
