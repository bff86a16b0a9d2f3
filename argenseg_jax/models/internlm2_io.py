"""Building and loading InternLM2 from HF checkpoints (`InternLM2ForCausalLM` keys)."""

import ml_collections
import numpy as np

from argenseg_jax.checkpoints import params
from argenseg_jax.checkpoints.conversion import Rule
from argenseg_jax.models.internlm2 import InternLM2, check_config, padded_vocab_size

# `InternLM2Config.__init__` defaults, used for fields a config.json leaves out.
HF_DEFAULTS = dict(
    vocab_size=103168, hidden_size=4096, intermediate_size=11008, num_hidden_layers=32,
    num_attention_heads=32, num_key_value_heads=None, hidden_act='silu',
    max_position_embeddings=2048, initializer_range=0.02, rms_norm_eps=1e-6,
    tie_word_embeddings=False, bias=True, rope_theta=10000, rope_scaling=None,
    pad_token_id=0, bos_token_id=1, eos_token_id=2)


def config_from_hf(hf: dict) -> ml_collections.ConfigDict:
  """Our config from an HF `llm_config` / InternLM2 `config.json` dict."""
  cfg = {k: hf.get(k, d) for k, d in HF_DEFAULTS.items()}
  if cfg['num_key_value_heads'] is None:
    cfg['num_key_value_heads'] = cfg['num_attention_heads']
  if cfg['hidden_act'] != 'silu' or cfg['tie_word_embeddings']:
    raise ValueError('only hidden_act=silu with untied embeddings is supported, got '
                     f'{cfg["hidden_act"]!r} / tie_word_embeddings={cfg["tie_word_embeddings"]}.')
  scaling = cfg.pop('rope_scaling') or {}
  if scaling and scaling.get('type') not in ('dynamic',):
    raise ValueError(f'rope_scaling {scaling} is not supported (only dynamic NTK).')
  cfg['rope_scaling_factor'] = float(scaling.get('factor', 1.0))
  cfg['head_dim'] = cfg['hidden_size'] // cfg['num_attention_heads']
  cfg = ml_collections.ConfigDict(cfg)
  check_config(cfg)
  return cfg


def conversion_table(cfg: ml_collections.ConfigDict, theirs: str = '',
                     ours: str = '') -> list[Rule]:
  """Every parameter of `InternLM2(cfg)` (under our prefix `ours`) <- the checkpoint's
  `{theirs}model.*` and `{theirs}output.weight`."""
  kv, hd = cfg.num_key_value_heads, cfg.head_dim
  groups = cfg.num_attention_heads // kv
  vocab = (cfg.vocab_size, padded_vocab_size(cfg.vocab_size))
  rules = [Rule(f'{ours}tok_embeddings/embedding', f'{theirs}model.tok_embeddings.weight',
                'pad_rows', vocab)]
  for i in range(cfg.num_hidden_layers):
    o, t = f'{ours}layers/{i}/', f'{theirs}model.layers.{i}.'
    rules += [Rule(f'{o}attention/w{p}', f'{t}attention.wqkv.weight', 'packed_qkv',
                   (p, kv, groups, hd)) for p in 'qkv']
    rules += [Rule(f'{o}attention/wo', f'{t}attention.wo.weight', 'linear_to_heads_in',
                   (cfg.num_attention_heads, hd)),
              Rule(f'{o}feed_forward/w1', f'{t}feed_forward.w1.weight', 'linear_oi_to_io'),
              Rule(f'{o}feed_forward/w3', f'{t}feed_forward.w3.weight', 'linear_oi_to_io'),
              Rule(f'{o}feed_forward/w2', f'{t}feed_forward.w2.weight', 'linear_oi_to_io'),
              Rule(f'{o}attention_norm/weight', f'{t}attention_norm.weight'),
              Rule(f'{o}ffn_norm/weight', f'{t}ffn_norm.weight')]
  return rules + [Rule(f'{ours}norm/weight', f'{theirs}model.norm.weight'),
                  Rule(f'{ours}output', f'{theirs}output.weight', 'linear_oi_to_io_pad', vocab)]


def from_state_dict(checkpoint: dict[str, np.ndarray], cfg: ml_collections.ConfigDict,
                    theirs: str = '', excused=()) -> InternLM2:
  """InternLM2 from `InternLM2ForCausalLM.state_dict()` keys under the prefix `theirs`."""
  return params.from_checkpoint(lambda rngs: InternLM2(cfg, rngs),
                                conversion_table(cfg, theirs), checkpoint, excused=excused)
