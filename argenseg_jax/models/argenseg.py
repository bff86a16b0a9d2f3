"""ARGenSeg: InternVL2.5 that writes a mask as 680 VQ-VAE codes, one scale per pass.

On top of `InternVLChat`: `word_embed` (Linear Cvae -> D), `pos_1LC` `[1, L, D]`,
`lvl_embed` `[S, D]` and the frozen VAR VQ-VAE `image_tokenizer`. After `<ge_start>`,
the `L - 1` `<MASK_CONTEXT>` slots take `word_embed(var_input) + lvl_embed[scale] +
pos_1LC[slot]` (slot 0 is the `<ge_start>` token itself); the logits at slot k predict
visual token k, whose vocabulary id is `visual_token_base + code`.
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from flax import nnx

from argenseg_jax.layers import logical, posemb
from argenseg_jax.layers.linear import dense
from argenseg_jax.layers.losses import chunked_nll, masked_mean
from argenseg_jax.models import cell_attention
from argenseg_jax.models.internvl_chat import InternVLChat, replace_rows
from argenseg_jax.models.var_vqvae import VQVAE, num_tokens

# Positions whose logits the training loss computes at a time (`losses.chunked_nll`):
# [B, 1024, 96768] f32 is 0.4 GB per sample for the 8B vocabulary.
LOSS_CHUNK = 1024


class TrainOutput(NamedTuple):
  loss: jax.Array           # [] text_loss + gen_loss (text_loss alone without masks)
  text_loss: jax.Array      # [] mean CE over text targets
  gen_loss: jax.Array       # [] mean CE over visual-token targets
  hidden: jax.Array         # [B, L, D] final-norm hidden states (`language_model.logits`)
  labels: jax.Array         # [B, L] with the <MASK_CONTEXT> labels replaced by visual ids
  inputs_embeds: jax.Array  # [B, L, D] what the LLM read


class ARGenSeg(InternVLChat):
  """`vision`, `language_model`, `word_embed`, `pos_1LC`, `lvl_embed`, `image_tokenizer`."""

  def __init__(self, cfg: ml_collections.ConfigDict, rngs: nnx.Rngs):
    super().__init__(cfg, rngs)
    self.tokens = ml_collections.FrozenConfigDict(cfg.tokens)
    self.patch_nums = tuple(cfg.vqvae.patch_nums)
    self.visual_loss = cfg.get('visual_loss', 'tokens')
    self.loss_chunk = cfg.get('loss_chunk', LOSS_CHUNK)
    if self.visual_loss not in ('tokens', 'scales'):
      raise ValueError(f"visual_loss must be 'tokens' or 'scales', got {self.visual_loss!r}.")
    d, z = cfg.llm.hidden_size, cfg.vqvae.z_channels
    if cfg.llm.vocab_size != cfg.tokens.visual_token_base + cfg.vqvae.vocab_size:
      raise ValueError(f'vocab_size {cfg.llm.vocab_size} != visual_token_base '
                       f'{cfg.tokens.visual_token_base} + VQ-VAE vocab {cfg.vqvae.vocab_size}: '
                       'the last rows of the output head must be the visual codes.')
    zeros = nnx.initializers.zeros_init()  # the effective init of the original
    if cfg.get('slot_init', 'zeros') == 'sincos2d':  # training from scratch
      # cells of every scale at their position in one frame (units: final-scale cells)
      last = self.patch_nums[-1]
      pos = jnp.concatenate([posemb.sincos_2d(*posemb.grid_points(pn, last), d)
                             for pn in self.patch_nums])[None]
      word_init, lvl_init = nnx.initializers.lecun_normal(), nnx.initializers.normal(0.5)
    else:
      pos = zeros(rngs.params(), (1, num_tokens(self.patch_nums), d))
      word_init, lvl_init = zeros, zeros
    self.word_embed = dense(z, d, (None, 'embed'), rngs, kernel_init=word_init)
    self.pos_1LC = logical.param(pos, (None, None, 'embed'))
    self.lvl_embed = nnx.Embed(len(self.patch_nums), d,
                               embedding_init=logical.partitioned(lvl_init, (None, 'embed')),
                               rngs=rngs)
    self.image_tokenizer = VQVAE(cfg.vqvae, rngs)
    if cfg.get('cell_heads', 0):
      self._init_cell_matching(cfg)

  def _init_cell_matching(self, cfg: ml_collections.ConfigDict) -> None:
    """`cell_heads` key heads of the first layer start as cell matchers
    (`cell_attention.py`); needs the sine-cosine image-token and slot tables, one image
    token per final-scale cell."""
    last = self.patch_nums[-1]
    tokens = self.vision.token_pos
    if cfg.get('slot_init') != 'sincos2d' or tokens is None or tokens.shape[0] != last ** 2:
      raise ValueError('cell_heads needs slot_init=sincos2d and token_pos_init=sincos2d with '
                       f'one image token per final-scale cell ({last}x{last}).')
    llm = cfg.llm
    attention = self.language_model.layers.attention  # stacked: [layers, ...]
    span = 2 * (tokens.shape[0] + num_tokens(self.patch_nums))
    wq, wk = cell_attention.cell_matching_init(
        attention.wq[0], attention.wk[0],
        cell_attention.slow_dims(llm.head_dim, llm.rope_theta, 0.3, span),
        cfg.get('cell_strength', 2.0), cfg.cell_heads)
    attention.wq[...] = attention.wq[...].at[0].set(wq)
    attention.wk[...] = attention.wk[...].at[0].set(wk)

  @property
  def level_of_slot(self) -> np.ndarray:
    """`lvl_1L`: the scale index of every pyramid slot, `[L]`."""
    return np.repeat(np.arange(len(self.patch_nums)), [p * p for p in self.patch_nums])

  def slot_embeddings(self, var_input: jax.Array, start: int = 1) -> jax.Array:
    """Inputs of slots `start .. start + n - 1` from `var_input [B, n, Cvae]`:
    `word_embed(var_input) + lvl_embed[level] + pos_1LC[slot]` -> `[B, n, D]`."""
    slots = np.arange(start, start + var_input.shape[1])
    levels = jnp.asarray(self.level_of_slot[slots])
    extra = jnp.take(self.lvl_embed.embedding[...], levels, axis=0) + self.pos_1LC[0, slots]
    return self.word_embed(var_input) + extra[None].astype(var_input.dtype)

  def mask_targets(self, masks: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Masks `[n, 256, 256, 3]` in [-1, 1] -> (visual-token ids `[n, L]`, teacher inputs
    `[n, L - 1, Cvae]`), computed by the frozen tokenizer without gradient."""
    codes = self.image_tokenizer.encode(masks)
    var_input = self.image_tokenizer.quantize.codes_to_var_input(codes)
    ids = jnp.concatenate(codes, axis=1) + self.tokens.visual_token_base
    return jax.lax.stop_gradient(ids), jax.lax.stop_gradient(var_input)

  def train_inputs(self, ids: jax.Array, labels: jax.Array, pixels: jax.Array,
                   image_flags: jax.Array, masks: jax.Array, mask_flags: jax.Array,
                   drop_path_rng: jax.Array | None = None) -> tuple[jax.Array, jax.Array]:
    """LLM input embeddings `[B, L, D]` and effective labels `[B, L]` for teacher forcing.

    ids / labels: `[B, L]` (labels -100 where ignored; a mask span is `<ge_start>`,
    `L_v - 1` x `<MASK_CONTEXT>`, `<ge_end>`, labelled `<MASK_CONTEXT>` from the first
    context slot through `<ge_end>`); pixels `[T, 448, 448, 3]` with `image_flags [T]`;
    masks `[n, 256, 256, 3]` in [-1, 1] with `mask_flags [n]` (flag-0 masks are
    tokenised and then dropped, like the original); `drop_path_rng` as `embed_inputs`.
    """
    tokens = self.tokens
    target_ids, var_input = self.mask_targets(masks)
    n, slots = target_ids.shape
    valid = mask_flags.astype(bool)
    embeds = self.embed_inputs(ids, pixels, image_flags, drop_path_rng)
    mask_embeds = self.slot_embeddings(var_input).astype(embeds.dtype)
    embeds = replace_rows(embeds, ids == tokens.mask_context_token_id,
                          mask_embeds.reshape(n * (slots - 1), -1),
                          jnp.repeat(valid, slots - 1))
    labels = replace_rows(labels[..., None], labels == tokens.mask_context_token_id,
                          target_ids.reshape(-1, 1), jnp.repeat(valid, slots))[..., 0]
    return embeds, labels

  def slot_weights(self, is_gen: jax.Array) -> jax.Array | None:
    """Visual-loss weights `[B, N]` for the visual targets `is_gen [B, N]` (a row's
    masks' slots in order): None for the original's mean over tokens (`visual_loss=
    'tokens'`); with 'scales', every scale of a mask weighs the same, its tokens sharing
    it, so the few coarse tokens that place the object count as much as the 64 fine ones
    that refine its edge."""
    if self.visual_loss == 'tokens':
      return None
    per_slot = 1.0 / np.array([p * p for p in self.patch_nums])[self.level_of_slot]
    slot = (jnp.cumsum(is_gen, axis=1) - 1) % len(per_slot)
    return jnp.asarray(per_slot, jnp.float32)[slot]

  def train_forward(self, ids: jax.Array, labels: jax.Array, token_mask: jax.Array,
                    pixels: jax.Array, image_flags: jax.Array, masks: jax.Array,
                    mask_flags: jax.Array, drop_path_rng: jax.Array | None = None
                    ) -> TrainOutput:
    """The original's training forward (one teacher-forced pass; see `train_inputs`):
    text and visual-token losses, each a mean over its own targets (the visual one
    weighted by `slot_weights`), full-vocabulary softmax, computed `loss_chunk`
    positions at a time. `token_mask [B, L]` is False on padding."""
    embeds, labels = self.train_inputs(ids, labels, pixels, image_flags, masks, mask_flags,
                                       drop_path_rng)
    b, length = ids.shape
    positions = jnp.maximum(jnp.cumsum(token_mask, axis=1) - 1, 0)
    hidden, _ = self(embeds, positions, token_mask,
                     self.language_model.empty_cache(b, length, embeds.dtype))
    shift_labels = labels[:, 1:]
    mask_context = self.tokens.mask_context_token_id
    is_text = (shift_labels != -100) & (shift_labels <= mask_context)
    is_gen = shift_labels > mask_context
    nll = chunked_nll(self.language_model.padded_logits, hidden[:, :-1],
                      jnp.where(shift_labels < 0, 0, shift_labels), self.loss_chunk)
    text_loss = masked_mean(nll, is_text)
    gen_loss = masked_mean(nll, is_gen, self.slot_weights(is_gen))
    loss = text_loss + jnp.where(is_gen.any(), gen_loss, 0.0)
    return TrainOutput(loss, text_loss, gen_loss, hidden, labels, embeds)
