"""A tiny ARGenSeg whose answers follow a script and whose masks depend on the input.

`scripted_argenseg(script)` is the byte-level `argenseg:variant=tiny` model, randomly
initialised, with one change: the token after each scripted token `t` is `script[t]`.
Each scripted token owns one embedding dimension (a large entry there) and the output
head reads that dimension into the logit of its successor, so greedy text follows the
script whatever else the row holds. The visual rows of the head ignore those
dimensions, and the mask-slot embeddings (`word_embed`, `lvl_embed`, `pos_1LC`) are
random instead of the original's zeros, so the codes of a mask depend on the row's
image and prompt (through attention), not on the script. Tests use it to make rows
reach `<ge_start>` at chosen steps, with chosen numbers of masks.
"""

import functools

import numpy as np

from argenseg_jax.checkpoints import params
from argenseg_jax.config_args import load_config
from argenseg_jax.models.argenseg import ARGenSeg

CONFIG = 'argenseg:variant=tiny'
EMBED_SCALE = 30.0  # the scripted token's own dimension, against ~0.02 elsewhere
HEAD_SCALE = 40.0   # logit of the successor per unit of that (normalised) dimension
ATTENTION_GAIN = 10.0  # on the 0.02-std attention weights


def scripted_argenseg(script: dict[int, int], seed: int = 0):
  """`(model, cfg)`: the tiny ARGenSeg with `script` (token id -> next token id) built in."""
  cfg = load_config(CONFIG)
  if len(script) > cfg.llm.hidden_size:
    raise ValueError(f'at most {cfg.llm.hidden_size} scripted tokens, got {len(script)}.')
  model = params.init(functools.partial(ARGenSeg, cfg), seed)
  flat = {k: np.array(v) for k, v in params.flat_params(model).items()}
  rng = np.random.default_rng(seed)
  embed = flat['language_model/tok_embeddings/embedding']   # [V, D]
  head = flat['language_model/output']                       # [D, V]
  head[:len(script), cfg.tokens.visual_token_base:] = 0.0    # codes ignore the script
  for dim, (token, successor) in enumerate(script.items()):
    embed[token, dim] += EMBED_SCALE
    head[dim, successor] += HEAD_SCALE
  for name in ('word_embed/kernel', 'lvl_embed/embedding', 'pos_1LC'):
    flat[name] = rng.normal(0.0, 0.5, flat[name].shape).astype(np.float32)
  for name in flat:  # attention strong enough for the image and the prompt to show
    if '/attention/' in name:
      flat[name] *= ATTENTION_GAIN
  return params.with_params(model, flat), cfg
