import functools
import json
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from argenseg_jax.checkpoints import params
from argenseg_jax.checkpoints.conversion import TRANSFORMS
from argenseg_jax.config_args import load_config
from argenseg_jax.models import argenseg_io, internlm2_io, internvl_chat_io, var_vqvae_io
from argenseg_jax.models.argenseg import ARGenSeg
from argenseg_jax.models.internlm2 import InternLM2
from argenseg_jax.models.internvl_chat import InternVLChat
from tests.conftest import reference_file
from tests.helpers import read_keys_tsv

ARGENSEG_EXTRAS = ('word_embed.', 'pos_1LC', 'lvl_embed.', 'image_tokenizer.')


def _reference_chat_config() -> dict:
  """The InternVL2.5-8B config written in the header of the ARGenSeg-8B key listing."""
  text = reference_file('argenseg-8b-keys.tsv').read_text()
  grab = lambda name: json.loads(re.search(rf'#\s+{name}:\s+(\{{.*\}})', text).group(1))
  return dict(grab('chat'), vision_config=grab('vision_config'), llm_config=grab('llm_config'))


def test_real_internvl_chat_keys_match_argenseg_8b():
  cfg = internvl_chat_io.config_from_hf(_reference_chat_config(), img_context_token_id=92546)
  assert (cfg.llm.num_key_value_heads, cfg.llm.head_dim, cfg.llm.vocab_size) == (8, 128, 96653)
  model = params.abstract(functools.partial(InternVLChat, cfg))
  shapes = params.shapes(model)
  llm = sum(int(np.prod(s)) for k, s in shapes.items() if k.startswith('language_model/'))
  padding = 2 * (96768 - 96653) * 4096  # embedding rows + head columns to a multiple of 128
  assert llm == 7_771_369_472 + padding
  assert shapes['language_model/output'] == (4096, 96768)
  reference = {k: s for k, s in read_keys_tsv(reference_file('argenseg-8b-keys.tsv')).items()
               if not k.startswith(ARGENSEG_EXTRAS)}
  table = internvl_chat_io.conversion_table(cfg)
  assert sorted({r.theirs for r in table}) == sorted(reference)
  assert sorted(r.ours for r in table) == sorted(shapes)
  for r in table:  # each transform maps the reference shape onto ours
    dummy = np.zeros(reference[r.theirs], np.int8)
    assert TRANSFORMS[r.transform](dummy, *r.args).shape == shapes[r.ours], r


def test_real_argenseg_8b_keys_match_the_reference_exactly():
  token_ids = {'<IMG_CONTEXT>': 92546, '<mask>': 92553, '<ge_start>': 92554,
               '<ge_end>': 92555, '<MASK_CONTEXT>': 92556}
  cfg = argenseg_io.config_from_hf(_reference_chat_config(), token_ids, load_config('var_vqvae'))
  assert cfg.tokens.visual_token_base == 92557
  model = params.abstract(functools.partial(ARGenSeg, cfg))
  shapes = params.shapes(model)
  reference = read_keys_tsv(reference_file('argenseg-8b-keys.tsv'))
  excused = {f'image_tokenizer.{k}' for k in var_vqvae_io.EXCUSED_KEYS}
  table = argenseg_io.conversion_table(cfg)
  assert sorted({r.theirs for r in table}) == sorted(set(reference) - excused)
  assert sorted(r.ours for r in table) == sorted(shapes)
  # spec: total without the VQ statistics buffer, + the vocabulary padding (zeros)
  assert params.count(model) == 8_220_862_339 + 2 * (96768 - 96653) * 4096
  for r in table:
    dummy = np.zeros(reference[r.theirs], np.int8)
    assert TRANSFORMS[r.transform](dummy, *r.args).shape == shapes[r.ours], r


def test_packed_wqkv_is_grouped_per_kv_head():
  kv, groups, hd, d = 2, 3, 2, 1
  # row block for kv group g, slot s (0..G-1 queries, G key, G+1 value) holds 10*g + s
  packed = np.concatenate([np.full((hd, d), 10 * g + s) for g in range(kv)
                           for s in range(groups + 2)]).astype(np.float32)
  q = TRANSFORMS['packed_qkv'](packed, 'q', kv, groups, hd)  # [D, H, hd]
  k = TRANSFORMS['packed_qkv'](packed, 'k', kv, groups, hd)
  v = TRANSFORMS['packed_qkv'](packed, 'v', kv, groups, hd)
  assert q[0, :, 0].tolist() == [0, 1, 2, 10, 11, 12]  # query head g*G + j
  assert k[0, :, 0].tolist() == [3, 13] and v[0, :, 0].tolist() == [4, 14]


@pytest.fixture(scope='module')
def tiny_llm():
  cfg = internlm2_io.config_from_hf(dict(
      vocab_size=50, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
      num_attention_heads=4, num_key_value_heads=2, rms_norm_eps=1e-5, bias=False,
      rope_theta=1e6, max_position_embeddings=64))
  return params.init(functools.partial(InternLM2, cfg), seed=0), cfg


def test_chunked_cache_equals_full_forward(tiny_llm):
  """A prefill then chunks of several tokens (causal inside each chunk, full over the
  cache) give the same logits as one full pass; the cache is larger than needed."""
  model, cfg = tiny_llm
  b, n = 2, 12
  ids = jax.random.randint(jax.random.key(0), (b, n), 0, cfg.vocab_size)
  mask = jnp.ones((b, n), bool).at[1, :3].set(False)  # row 1 left-padded
  pos = jnp.broadcast_to(jnp.arange(n), (b, n))

  def run(chunks, size):
    cache, outs, start = model.empty_cache(b, size), [], 0
    for c in chunks:
      hidden, cache = model(model.embed(ids[:, start:start + c]), pos[:, start:start + c],
                            mask[:, start:start + c], cache)
      outs.append(model.logits(hidden))
      start += c
    return jnp.concatenate(outs, axis=1), cache

  full, _ = run([n], n)
  chunked, cache = run([5, 4, 1, 2], 20)
  np.testing.assert_array_equal(cache.length, [n, n])
  real = np.asarray(mask)  # padded query rows hold length-dependent values, as in HF
  np.testing.assert_allclose(np.asarray(chunked)[real], np.asarray(full)[real], atol=1e-5)
  assert np.isfinite(np.asarray(full)).all()


def test_rejects_unsupported_configs():
  with pytest.raises(ValueError, match='num_key_value_heads'):
    internlm2_io.config_from_hf(dict(hidden_size=32, num_attention_heads=4,
                                     num_key_value_heads=3, bias=False))
  with pytest.raises(ValueError, match='biases'):
    internlm2_io.config_from_hf(dict(hidden_size=32, num_attention_heads=4))  # HF default
  with pytest.raises(ValueError, match='rope_scaling'):
    internlm2_io.config_from_hf(dict(bias=False, rope_scaling={'type': 'yarn', 'factor': 2.0}))
