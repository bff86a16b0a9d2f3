"""Runs ARGenSeg on an `argenseg` fixture: the training forward and the mask targets.

The generation outputs (`b1_*`, `cfg_*`) need the next-scale sampler, which is not
built yet; they are reported as not produced.
"""

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from argenseg_jax.checkpoints.torch_files import read_safetensors
from argenseg_jax.models import argenseg_io, var_vqvae_io


def run(fixture, wanted) -> dict[str, np.ndarray]:
  c = fixture.config
  vqvae = var_vqvae_io.config_from_var_kwargs(c['image_tokenizer_VQVAE_kwargs'],
                                              16 * c['patch_nums'][-1])
  cfg = argenseg_io.config_from_hf(c['ctor_kwargs'], c['token_ids'], vqvae)
  model = argenseg_io.from_state_dict(read_safetensors(fixture.weights[0]), cfg)
  graphdef, state = nnx.split(model)
  x = fixture.inputs
  if not any(wanted(p) for p in ('train_', 'mask_')):
    return {}

  @jax.jit
  def forward(state, ids, labels, token_mask, pixels, image_flags, masks, mask_flags):
    m = nnx.merge(graphdef, state)
    target_ids, var_input = m.mask_targets(masks)
    out = m.train_forward(ids, labels, token_mask, pixels, image_flags, masks, mask_flags)
    return out, target_ids, var_input

  nhwc = lambda a: jnp.asarray(a.transpose(0, 2, 3, 1))
  out, target_ids, var_input = forward(
      state, jnp.asarray(x['train_input_ids'], jnp.int32),
      jnp.asarray(x['train_labels'], jnp.int32), jnp.asarray(x['train_attention_mask'], bool),
      nhwc(x['pixel_values']), jnp.asarray(x['image_flags'][:, 0]), nhwc(x['masks']),
      jnp.asarray(x['mask_flags'][:, 0]))
  logits = np.asarray(out.logits[0])
  labels = np.asarray(out.labels, np.int64)
  next_labels = labels[0, 1:]
  at_label = np.take_along_axis(logits[:-1], np.maximum(next_labels, 0)[:, None], 1)[:, 0]
  shifted = logits - logits.max(axis=-1, keepdims=True)
  return {
      'mask_idx_all': np.asarray(target_ids, np.int64) - cfg.tokens.visual_token_base,
      'mask_var_input': np.asarray(var_input),
      'train_loss': np.asarray(out.loss, np.float32).reshape(1),
      'train_text_loss': np.asarray(out.text_loss, np.float32).reshape(1),
      'train_gen_loss': np.asarray(out.gen_loss, np.float32).reshape(1),
      'train_labels_effective': labels,
      'train_inputs_embeds': np.asarray(out.inputs_embeds),
      # the fixture stores full logit rows only at these positions: they select the rows
      'train_logits_positions': fixture.outputs['train_logits_positions'],
      'train_logits_rows': logits[fixture.outputs['train_logits_positions']],
      'train_logits_lse': (np.log(np.exp(shifted).sum(-1)) + logits.max(-1)).astype(np.float32),
      'train_logits_argmax': logits.argmax(-1).astype(np.int64),
      'train_logit_at_label': np.where(next_labels == -100, 0.0, at_label).astype(np.float32),
  }
