"""Runs our InternViT (`intern_vit`) and the vision half of `internvl_chat`."""

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from argenseg_jax.checkpoints.torch_files import read_safetensors
from argenseg_jax.models import image_embedder_io


def _nhwc(pixels: np.ndarray) -> jax.Array:
  return jnp.asarray(pixels.transpose(0, 2, 3, 1))


def run_intern_vit(fixture, wanted) -> dict[str, np.ndarray]:
  vision = image_embedder_io.vision_config_from_hf(fixture.config['ctor_kwargs'])
  model = image_embedder_io.vit_from_state_dict(read_safetensors(fixture.weights[0]), vision)
  graphdef, state = nnx.split(model)
  forward = jax.jit(lambda s, x: nnx.merge(graphdef, s)(x))
  pixels = fixture.inputs['pixel_values']
  out = {}
  if any(wanted(n) for n in ('last_hidden_state', 'embeddings', 'hidden_states_1')):
    states = forward(state, _nhwc(pixels))
    out.update(last_hidden_state=np.asarray(states[-1]), embeddings=np.asarray(states[0]),
               hidden_states_1=np.asarray(states[1]))
  if wanted('last_hidden_state_224'):
    # Every other pixel: a 16x16 patch grid, so the position embedding is resized.
    out['last_hidden_state_224'] = np.asarray(forward(state, _nhwc(pixels[:, :, ::2, ::2]))[-1])
  return out


def run_internvl_chat(fixture, wanted) -> dict[str, np.ndarray]:
  """The image path only (`vit_*`, `pixel_shuffled`); the LLM outputs are not produced."""
  chat = fixture.config['ctor_kwargs']
  cfg = image_embedder_io.embedder_config_from_hf(chat, chat['llm_config']['hidden_size'])
  model = image_embedder_io.embedder_from_state_dict(
      read_safetensors(fixture.weights[0]), cfg, excused=('language_model.*',))
  graphdef, state = nnx.split(model)
  if not any(wanted(n) for n in ('vit_last_hidden_state', 'pixel_shuffled', 'vit_embeds')):
    return {}
  feats = jax.jit(lambda s, x: nnx.merge(graphdef, s).features(x))(
      state, _nhwc(fixture.inputs['pixel_values']))
  return {'vit_last_hidden_state': np.asarray(feats.vit_hidden),
          'pixel_shuffled': np.asarray(feats.pixel_shuffled),
          'vit_embeds': np.asarray(feats.embeds)}
