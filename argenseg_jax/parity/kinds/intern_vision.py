"""Runs our InternViT (`intern_vit`) and the InternVL chat model (`internvl_chat`)."""

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from argenseg_jax.checkpoints.torch_files import read_safetensors
from argenseg_jax.models import image_embedder_io, internvl_chat_io


def _nhwc(pixels: np.ndarray) -> jax.Array:
  return jnp.asarray(pixels.transpose(0, 2, 3, 1))


def run_intern_vit(fixture, wanted) -> dict[str, np.ndarray]:
  vision = image_embedder_io.vision_config_from_hf(fixture.config['ctor_kwargs'])
  model = image_embedder_io.vit_from_state_dict(read_safetensors(fixture.weights[0]), vision)
  graphdef, state = nnx.split(model)
  # the hidden state after n layers (None: all), the reference's hidden_states[n]
  forward = jax.jit(lambda s, x, n: nnx.merge(graphdef, s)(x, num_layers=n), static_argnums=2)
  pixels = fixture.inputs['pixel_values']
  out = {}
  for name, layers in (('last_hidden_state', None), ('embeddings', 0), ('hidden_states_1', 1)):
    if wanted(name):
      out[name] = np.asarray(forward(state, _nhwc(pixels), layers))
  if wanted('last_hidden_state_224'):
    # Every other pixel (the reference's input): half the patch grid, so the position
    # embedding is resized.
    out['last_hidden_state_224'] = np.asarray(
        forward(state, _nhwc(pixels[:, :, ::2, ::2]), None))
  return out


def run_internvl_chat(fixture, wanted) -> dict[str, np.ndarray]:
  """InternVL chat: the image path, the merged input embeddings and the logits."""
  cfg = internvl_chat_io.config_from_hf(fixture.config['ctor_kwargs'],
                                        fixture.config['img_context_token_id'])
  model = internvl_chat_io.from_state_dict(read_safetensors(fixture.weights[0]), cfg)
  graphdef, state = nnx.split(model)
  pixels = _nhwc(fixture.inputs['pixel_values'])
  ids = jnp.asarray(fixture.inputs['input_ids'], jnp.int32)
  flags = jnp.asarray(fixture.inputs['image_flags'])
  per_tile = fixture.config['num_image_token']
  if int((ids == cfg.img_context_token_id).sum()) != per_tile * int(flags.sum()):
    raise ValueError('fixture: <IMG_CONTEXT> count does not match the image tiles.')

  @jax.jit
  def forward(state, pixels, ids, flags):
    m = nnx.merge(graphdef, state)
    feats = m.vision.features(pixels)
    embeds = m.embed_inputs(ids, pixels, flags)
    b, n = ids.shape
    positions = jnp.broadcast_to(jnp.arange(n), (b, n))
    hidden, _ = m(embeds, positions, jnp.ones((b, n), bool),
                  m.language_model.empty_cache(b, n, embeds.dtype))
    return feats, embeds, m.language_model.logits(hidden)

  feats, embeds, logits = forward(state, pixels, ids, flags)
  return {'vit_last_hidden_state': np.asarray(feats.vit_hidden),
          'pixel_shuffled': np.asarray(feats.pixel_shuffled),
          'vit_embeds': np.asarray(feats.embeds),
          'inputs_embeds': np.asarray(embeds), 'logits': np.asarray(logits)}
