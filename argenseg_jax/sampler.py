"""The next-scale sampler: text decoding with whole-scale mask passes, in one jit.

Text is decoded greedily in a `lax.while_loop`. When a row's next token is
`<ge_start>`, the 10 scale passes run inside the same program (unrolled: every scale
has its own static size): slot 0 is the `<ge_start>` embedding, each later scale's
inputs come from the VQ-VAE (`next_autoregressive_input`) plus `lvl_embed + pos_1LC`,
attention is causal inside a scale and full over the cache, positions are consecutive.
Then `<ge_end>` is forced and text continues until `eos` or the budget.

Every row's answer depends on that row alone. Each row has its own cache write
position, token count and mask count, and a row that sits out a step (finished, or
waiting) leaves its cache and logits untouched. Rows reach `<ge_start>` at different
steps; such a row *waits* (emits nothing, its state frozen) until every unfinished row
waits or has finished, and then one shared pass draws all their masks. So N rows with
k masks each take k passes when their answers are alike, and the cache needs room for
`SamplerConfig.mask_passes` masks per row, whatever the neighbours do. A row that asks
for more masks than that stops (`SamplerOutput.out_of_masks`); `max_new_tokens` counts
each row's own tokens (the forced `<ge_end>` included).

Classifier-free guidance (`guidance_scale > 0`): the batch is `[conditional rows;
unconditional rows]`, row `i` paired with row `N + i`. The pair's visual logits are
`(1 + t) * cond - t * uncond` with `t = guidance_scale * si / (S - 1)`, both rows get the
same codes; the unconditional row follows its partner's waits and mask passes and, like the
original, feeds its own argmax token at slot 0.

`SamplerOutput.tokens` holds, like the original's `generate`, `<ge_end>` where a row
drew a mask: the `<ge_start>` it predicted is consumed by the mask pass.
"""

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp

from argenseg_jax.models.argenseg import ARGenSeg
from argenseg_jax.models.internlm2 import KVCache
from argenseg_jax.models.var_vqvae import num_tokens


@dataclasses.dataclass(frozen=True)
class SamplerConfig:
  max_new_tokens: int = 64
  mask_passes: int = 1          # cache room for this many mask passes
  guidance_scale: float = 0.0   # > 0: classifier-free guidance, batch [cond; uncond]
  temperature: float = 0.0      # visual codes: 0 = greedy (the original)
  top_k: int = 0                # visual codes: keep the k best (0 = all)
  top_p: float = 1.0            # visual codes: nucleus mass
  eos_token_id: int = 2
  pad_token_id: int = 2
  raster: bool = False          # baseline: one visual token per forward pass


class ScalePass(NamedTuple):
  """A mask's scale passes. The sampler reads the codes and the cache; the other two are
  kept for the parity checks (`parity/kinds/argenseg.py`; unused, XLA drops them)."""
  codes: list            # per scale [B, pn*pn] codebook indices
  parity_inputs: list    # per scale [B, pn*pn, D] the embeddings fed
  parity_logits: list    # per scale [B, pn*pn, V_vis] visual logits before guidance
  cache: KVCache


class SamplerOutput(NamedTuple):
  tokens: jax.Array        # [B, max_new_tokens] the answer's ids, pad after eos; a drawn
                           # mask appears as its `<ge_end>` (see the module docstring)
  codes: jax.Array         # [B, mask_passes, L] visual codes of each mask
  num_masks: jax.Array     # [B]
  out_of_masks: jax.Array  # [B] stopped because the row's mask budget was spent


def prefill_positions(token_mask: jax.Array) -> jax.Array:
  """HF generate's positions: `cumsum(mask) - 1`, padding set to 1, `[B, L]`."""
  return jnp.where(token_mask, jnp.cumsum(token_mask, axis=1) - 1, 1)


def pick_codes(logits: jax.Array, config: SamplerConfig, rng: jax.Array) -> jax.Array:
  """Codes from visual logits `[..., V]`: argmax, or sampled with temperature/top-k/top-p."""
  if config.temperature <= 0.0:
    return jnp.argmax(logits, axis=-1).astype(jnp.int32)
  logits = logits / config.temperature
  if config.top_k > 0:
    kth = jax.lax.top_k(logits, config.top_k)[0][..., -1:]
    logits = jnp.where(logits < kth, -jnp.inf, logits)
  if config.top_p < 1.0:
    order = jnp.sort(logits, axis=-1)[..., ::-1]
    cum = jnp.cumsum(jax.nn.softmax(order, axis=-1), axis=-1)
    cutoff = jnp.take_along_axis(order, jnp.sum(cum < config.top_p, -1, keepdims=True), -1)
    logits = jnp.where(logits < cutoff, -jnp.inf, logits)
  return jax.random.categorical(rng, logits).astype(jnp.int32)


def _pair(x: jax.Array, config: SamplerConfig) -> jax.Array:
  """Copies the conditional half onto the unconditional half (guidance), else identity."""
  if config.guidance_scale <= 0:
    return x
  n = x.shape[0] // 2
  return jnp.concatenate([x[:n], x[:n]], axis=0)


def _whole_scale(model, x, positions, active, cache):
  """A scale's slots in one forward pass (causal inside the chunk)."""
  token_mask = jnp.broadcast_to(active[:, None], positions.shape)
  return model(x, positions, token_mask, cache, active)


def _one_token_at_a_time(model, x, positions, active, cache):
  """The raster-order baseline: the same slots, one forward pass each (`lax.scan`).
  Slot inputs depend only on earlier scales, so the codes equal `_whole_scale`'s."""
  def step(cache, inputs):
    xi, pi = inputs
    hidden, cache = model(xi[:, None], pi[:, None], active[:, None], cache, active)
    return cache, hidden[:, 0]
  cache, hidden = jax.lax.scan(step, cache, (jnp.swapaxes(x, 0, 1), positions.T))
  return jnp.swapaxes(hidden, 0, 1), cache


def mask_pass(model: ARGenSeg, slot0_ids: jax.Array, start_pos: jax.Array, active: jax.Array,
              cache: KVCache, config: SamplerConfig, rng: jax.Array) -> ScalePass:
  """The 10 scale passes for rows `active [B]` (the others' caches stay as they were),
  slot 0 = `slot0_ids [B]` at `start_pos [B]`."""
  vq = model.image_tokenizer
  pns = model.patch_nums
  b = slot0_ids.shape[0]
  x = model.language_model.embed(slot0_ids[:, None])
  f_hat = jnp.zeros((b, pns[-1], pns[-1], vq.quantize.embedding.features), jnp.float32)
  visual = vq.quantize.embedding.num_embeddings
  run = _one_token_at_a_time if config.raster else _whole_scale
  codes, inputs, vis_logits, slot = [], [], [], 0
  for si, pn in enumerate(pns):
    n = pn * pn
    positions = start_pos[:, None] + slot + jnp.arange(n)[None]
    hidden, cache = run(model, x, positions, active, cache)
    logits = model.language_model.logits(hidden, -visual)  # the visual rows only
    inputs.append(x)
    vis_logits.append(logits)
    if config.guidance_scale > 0:
      t = config.guidance_scale * si / (len(pns) - 1)
      guided = (1 + t) * logits[:b // 2] - t * logits[b // 2:]
      logits = jnp.concatenate([guided, guided], axis=0)
    idx = pick_codes(logits, config, jax.random.fold_in(rng, si))
    codes.append(idx)
    f_hat, nxt = vq.quantize.next_autoregressive_input(si, f_hat,
                                                       vq.quantize.code_embeddings(si, idx))
    slot += n
    if si + 1 < len(pns):
      x = model.slot_embeddings(nxt.reshape(b, -1, nxt.shape[-1]), start=slot).astype(x.dtype)
  return ScalePass(codes, inputs, vis_logits, cache)


class SamplerState(NamedTuple):
  """The `lax.while_loop` carry of `generate`; every field but `rng` is per row."""
  emitted: jax.Array       # [B] tokens emitted so far
  tokens: jax.Array        # [B, max_new_tokens]
  last_logits: jax.Array   # [B, V] logits for the next token
  positions: jax.Array     # [B] position of the next token fed
  cache: KVCache
  done: jax.Array          # [B]
  codes: jax.Array         # [B, mask_passes, L]
  num_masks: jax.Array     # [B]
  out_of_masks: jax.Array  # [B]
  rng: jax.Array           # split at every mask pass


def prefill(model: ARGenSeg, ids: jax.Array, token_mask: jax.Array, pixels: jax.Array,
            image_flags: jax.Array, cache_size: int):
  """The prompt pass: `(embeds [B, P, D], positions [B, P], last logits [B, V], cache)`."""
  embeds = model.embed_inputs(ids, pixels, image_flags)
  positions = prefill_positions(token_mask)
  cache = model.language_model.empty_cache(ids.shape[0], cache_size, embeds.dtype)
  hidden, cache = model(embeds, positions, token_mask, cache)
  return embeds, positions, model.language_model.logits(hidden[:, -1:])[:, 0], cache


def text_step(model: ARGenSeg, token: jax.Array, position: jax.Array, active: jax.Array,
              cache: KVCache) -> tuple[jax.Array, KVCache]:
  """One token per active row at `position [B]` -> next-token logits `[B, V]`
  (meaningless for inactive rows, whose caches stay as they were)."""
  hidden, cache = model(model.language_model.embed(token[:, None]), position[:, None],
                        active[:, None], cache, active)
  return model.language_model.logits(hidden)[:, 0], cache


def generate(model: ARGenSeg, ids: jax.Array, token_mask: jax.Array, pixels: jax.Array,
             image_flags: jax.Array, config: SamplerConfig, rng: jax.Array) -> SamplerOutput:
  """Greedy text with next-scale masks for left-padded prompts `ids [B, P]`."""
  tokens = model.tokens
  b, p = ids.shape
  rows = jnp.arange(b)
  slots = num_tokens(model.patch_nums)
  cache_size = p + config.max_new_tokens + slots * config.mask_passes
  _, positions, logits, cache = prefill(model, ids, token_mask, pixels, image_flags, cache_size)

  def mask_branch(state: SamplerState, start: jax.Array, slot0: jax.Array) -> SamplerState:
    rng, pass_rng = jax.random.split(state.rng)
    res = mask_pass(model, slot0, state.positions, start, state.cache, config, pass_rng)
    new = jnp.concatenate(res.codes, axis=1)  # [B, L]
    slot = jax.nn.one_hot(state.num_masks, config.mask_passes, dtype=bool) & start[:, None]
    codes = jnp.where(slot[..., None], new[:, None], state.codes)
    return state._replace(
        cache=res.cache, codes=codes, num_masks=state.num_masks + start,
        positions=state.positions + jnp.where(start, slots, 0), rng=rng)

  def body(state: SamplerState) -> SamplerState:
    nxt = jnp.argmax(state.last_logits, axis=-1).astype(jnp.int32)
    wants = _pair((nxt == tokens.gen_start_token_id) & ~state.done, config)
    over = wants & (state.num_masks >= config.mask_passes)  # the row's own budget is spent
    waiting = wants & ~over
    done = state.done | over
    draw = waiting & jnp.all(waiting | done)  # all unfinished rows wait: one shared pass
    state = jax.lax.cond(draw.any(), lambda s: mask_branch(s, draw, nxt), lambda s: s, state)
    emit = ~done & (~waiting | draw)
    token = jnp.where(draw, tokens.gen_end_token_id, nxt)
    logits, cache = text_step(model, token, state.positions, emit, state.cache)
    emitted = state.emitted + emit
    return state._replace(
        emitted=emitted,
        tokens=state.tokens.at[rows, jnp.where(emit, state.emitted, config.max_new_tokens)].set(
            token, mode='drop'),
        last_logits=jnp.where(emit[:, None], logits, state.last_logits),
        positions=state.positions + emit, cache=cache,
        done=done | (emit & (token == config.eos_token_id)) | (emitted >= config.max_new_tokens),
        out_of_masks=state.out_of_masks | over)

  init = SamplerState(
      emitted=jnp.zeros((b,), jnp.int32),
      tokens=jnp.full((b, config.max_new_tokens), config.pad_token_id, jnp.int32),
      last_logits=logits, positions=positions[:, -1] + 1, cache=cache,
      done=jnp.full((b,), config.max_new_tokens <= 0),
      codes=jnp.zeros((b, config.mask_passes, slots), jnp.int32),
      num_masks=jnp.zeros((b,), jnp.int32), out_of_masks=jnp.zeros((b,), bool), rng=rng)
  final = jax.lax.while_loop(lambda s: ~s.done.all(), body, init)
  return SamplerOutput(final.tokens, final.codes, final.num_masks, final.out_of_masks)
