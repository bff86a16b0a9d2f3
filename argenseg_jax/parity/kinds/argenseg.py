"""Runs ARGenSeg on an `argenseg` fixture: the training forward, the mask targets, and
greedy generation with a mask (`b1_*`, batch 1; `cfg_*`, guided conditional +
unconditional pair).

Generated ids and codes come from the jitted `sampler.generate`; the per-call records
(prefill, step logits, scale inputs) from the same building blocks run one by one.
"""

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from argenseg_jax import image_io, sampler
from argenseg_jax.checkpoints.torch_files import read_safetensors
from argenseg_jax.models import argenseg_io, var_vqvae_io
from argenseg_jax.models.var_vqvae import num_tokens, scale_slices


def run(fixture, wanted) -> dict[str, np.ndarray]:
  c = fixture.config
  vqvae = var_vqvae_io.config_from_var_kwargs(c['image_tokenizer_VQVAE_kwargs'],
                                              c['class_attributes']['gen_img_reso'])
  cfg = argenseg_io.config_from_hf(c['ctor_kwargs'], c['token_ids'], vqvae)
  model = argenseg_io.from_state_dict(read_safetensors(fixture.weights[0]), cfg)
  graphdef, state = nnx.split(model)
  x = fixture.inputs
  out = {}
  for prefix, guidance in (('b1', 0.0), ('cfg', float(c['cfg']))):
    if wanted(prefix + '_'):
      out.update(_generation(fixture, model, prefix, guidance))
  if not any(wanted(p) for p in ('train_', 'mask_')):
    return out

  @jax.jit
  def forward(state, ids, labels, token_mask, pixels, image_flags, masks, mask_flags):
    model = nnx.merge(graphdef, state)
    target_ids, var_input = model.mask_targets(masks)
    result = model.train_forward(ids, labels, token_mask, pixels, image_flags, masks, mask_flags)
    return result, model.language_model.logits(result.hidden), target_ids, var_input

  nhwc = lambda a: jnp.asarray(a.transpose(0, 2, 3, 1))
  train, train_logits, target_ids, var_input = forward(
      state, jnp.asarray(x['train_input_ids'], jnp.int32),
      jnp.asarray(x['train_labels'], jnp.int32), jnp.asarray(x['train_attention_mask'], bool),
      nhwc(x['pixel_values']), jnp.asarray(x['image_flags'][:, 0]), nhwc(x['masks']),
      jnp.asarray(x['mask_flags'][:, 0]))
  logits = np.asarray(train_logits[0])
  labels = np.asarray(train.labels, np.int64)
  next_labels = labels[0, 1:]
  at_label = np.take_along_axis(logits[:-1], np.maximum(next_labels, 0)[:, None], 1)[:, 0]
  shifted = logits - logits.max(axis=-1, keepdims=True)
  return out | {
      'mask_idx_all': np.asarray(target_ids, np.int64) - cfg.tokens.visual_token_base,
      'mask_var_input': np.asarray(var_input),
      'train_loss': np.asarray(train.loss, np.float32).reshape(1),
      'train_text_loss': np.asarray(train.text_loss, np.float32).reshape(1),
      'train_gen_loss': np.asarray(train.gen_loss, np.float32).reshape(1),
      'train_labels_effective': labels,
      'train_inputs_embeds': np.asarray(train.inputs_embeds),
      # the fixture stores full logit rows at positions of its choice: they select our
      # rows, and the positions compared are those of our rows nearest to the stored ones
      # (rows that our forward computes at other positions fail here too)
      'train_logits_positions': _nearest_rows(logits, fixture.outputs['train_logits_rows']),
      'train_logits_rows': logits[fixture.outputs['train_logits_positions']],
      'train_logits_lse': (np.log(np.exp(shifted).sum(-1)) + logits.max(-1)).astype(np.float32),
      'train_logits_argmax': logits.argmax(-1).astype(np.int64),
      'train_logit_at_label': np.where(next_labels == -100, 0.0, at_label).astype(np.float32),
  }


def _nearest_rows(logits: np.ndarray, rows: np.ndarray) -> np.ndarray:
  """For each of `rows` `[k, V]`, the position of the closest (L2) row of `logits` `[N, V]`."""
  logits, rows = logits.astype(np.float64), rows.astype(np.float64)
  distance = (logits ** 2).sum(-1)[None] - 2 * rows @ logits.T  # + |row|^2, the same per row
  return distance.argmin(-1).astype(np.int64)


def _generation(fixture, model, prefix: str, guidance: float) -> dict[str, np.ndarray]:
  x = fixture.inputs
  ids = jnp.asarray(x[f'gen_input_ids_{prefix}'], jnp.int32)
  token_mask = jnp.asarray(x[f'gen_attention_mask_{prefix}'], bool)
  b = ids.shape[0]
  pixels = jnp.repeat(jnp.asarray(x['pixel_values'].transpose(0, 2, 3, 1)), b, axis=0)
  flags = jnp.ones((b,), jnp.int32)
  # The reference's new tokens [B, steps]: each <ge_end> of row 0 closes one mask.
  ref_ids = fixture.outputs[f'{prefix}_generated_ids']
  steps = ref_ids.shape[1]
  is_mask = ref_ids[0] == model.tokens.gen_end_token_id
  if not is_mask.any():
    raise ValueError(f'fixture: {prefix}_generated_ids holds no <ge_end>, so no mask.')
  special = fixture.config['runtime_attributes']
  sampler_config = sampler.SamplerConfig(
      max_new_tokens=steps, mask_passes=int(is_mask.sum()), guidance_scale=guidance,
      eos_token_id=special['eos_token_id'], pad_token_id=special['pad_token_id'])
  graphdef, state = nnx.split(model)
  rng = jax.random.key(0)
  result = jax.jit(lambda s, *a: sampler.generate(nnx.merge(graphdef, s), *a, sampler_config, rng))(
      state, ids, token_mask, pixels, flags)
  codes = np.asarray(result.codes[:1, 0], np.int64)  # the (conditional) first row's mask
  out = {f'{prefix}_generated_ids': np.asarray(result.tokens, np.int64),
         f'{prefix}_visual_ids_all': codes}
  out.update({f'{prefix}_visual_ids_s{si}': codes[:, a:b]
              for si, (a, b) in enumerate(scale_slices(model.patch_nums))})

  # The same computation call by call, fed the reference's tokens, to record what each
  # call saw; a mask pass runs where the reference emits <ge_end> (the first one recorded).
  slots = num_tokens(model.patch_nums)
  size = ids.shape[1] + steps + slots * sampler_config.mask_passes

  @jax.jit
  def records(state, ids, token_mask, pixels, flags):
    model = nnx.merge(graphdef, state)
    embeds, positions, logits, cache = sampler.prefill(model, ids, token_mask, pixels, flags, size)
    pos = positions[:, -1] + 1
    active = jnp.ones((b,), bool)
    step_logits, first = [logits], None
    for t in range(steps):
      if is_mask[t]:  # the logits chose <ge_start>: slot 0 is every row's argmax
        slot0 = jnp.argmax(logits, -1).astype(jnp.int32)
        res = sampler.mask_pass(model, slot0, pos, active, cache, sampler_config, rng)
        if first is None:
          first = res, pos
        cache, pos = res.cache, pos + slots
      if t + 1 < steps:
        logits, cache = sampler.text_step(model, jnp.asarray(ref_ids[:, t], jnp.int32), pos, active,
                                          cache)
        step_logits.append(logits)
        pos = pos + 1
    res, start = first
    image = model.image_tokenizer.decode([c[:1] for c in res.codes])
    return (embeds, positions, jnp.stack(step_logits), jnp.concatenate(res.parity_inputs, axis=1),
            start[:, None] + jnp.arange(slots)[None], res.parity_logits, image)

  embeds, positions, step_logits, scale_inputs, scale_pos, head, image = records(
      state, ids, token_mask, pixels, flags)
  image = np.asarray(image)
  out.update({
      f'{prefix}_prefill_inputs_embeds': np.asarray(embeds),
      f'{prefix}_prefill_position_ids': np.asarray(positions, np.int64),
      f'{prefix}_step_last_logits': np.asarray(step_logits),
      f'{prefix}_scale_inputs_embeds': np.asarray(scale_inputs),
      f'{prefix}_scale_position_ids': np.asarray(scale_pos, np.int64),
      f'{prefix}_decoded_image': image.transpose(0, 3, 1, 2),
      f'{prefix}_mask_uint8': image_io.signed_to_uint8(image[0]),
  })
  out.update({f'{prefix}_head_logits_vis_s{si}': np.asarray(h) for si, h in enumerate(head)})
  return out
