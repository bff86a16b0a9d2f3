"""Building and loading the InternVL image path from InternVL / ARGenSeg checkpoints.

Checkpoint keys: `vision_model.*` (InternViT) and `mlp1.{0,1,3}.*`; a standalone
InternViT checkpoint has the vision keys without the `vision_model.` prefix.
"""

import ml_collections
import numpy as np

from argenseg_jax.checkpoints import params
from argenseg_jax.checkpoints.conversion import Rule
from argenseg_jax.models.image_embedder import ImageEmbedder
from argenseg_jax.models.intern_vit import InternViT

# `InternVisionConfig.__init__` defaults (InternViT-6B-224px values).
HF_VISION_DEFAULTS = dict(
    image_size=224, patch_size=14, num_channels=3, qkv_bias=False, qk_normalization=True,
    norm_type='rms_norm', layer_norm_eps=1e-6, hidden_act='gelu', initializer_factor=0.1,
    initializer_range=1e-10, drop_path_rate=0.0, hidden_size=3200, intermediate_size=12800,
    num_attention_heads=25, num_hidden_layers=48)


def _linear(ours: str, theirs: str, bias: bool = True) -> list[Rule]:
  rules = [Rule(f'{ours}/kernel', f'{theirs}.weight', 'linear_oi_to_io')]
  return rules + ([Rule(f'{ours}/bias', f'{theirs}.bias')] if bias else [])


def _norm(ours: str, theirs: str, kind: str) -> list[Rule]:
  if kind == 'rms_norm':
    return [Rule(f'{ours}/weight', f'{theirs}.weight')]
  return [Rule(f'{ours}/scale', f'{theirs}.weight'), Rule(f'{ours}/bias', f'{theirs}.bias')]


def vit_table(vision: ml_collections.ConfigDict, ours: str = '', theirs: str = '') -> list[Rule]:
  """InternViT parameters under our prefix `ours` and checkpoint prefix `theirs`."""
  rules = [Rule(f'{ours}embeddings/class_embedding', f'{theirs}embeddings.class_embedding'),
           Rule(f'{ours}embeddings/position_embedding', f'{theirs}embeddings.position_embedding'),
           Rule(f'{ours}embeddings/patch_embedding/kernel',
                f'{theirs}embeddings.patch_embedding.weight', 'conv_oihw_to_hwio'),
           Rule(f'{ours}embeddings/patch_embedding/bias',
                f'{theirs}embeddings.patch_embedding.bias')]
  for i in range(vision.num_hidden_layers):
    o, t = f'{ours}encoder/layers/{i}/', f'{theirs}encoder.layers.{i}.'
    rules += [Rule(f'{o}ls1', f'{t}ls1'), Rule(f'{o}ls2', f'{t}ls2')]
    rules += _norm(f'{o}norm1', f'{t}norm1', vision.norm_type)
    rules += _norm(f'{o}norm2', f'{t}norm2', vision.norm_type)
    rules += _linear(f'{o}attn/qkv', f'{t}attn.qkv', vision.qkv_bias)
    rules += _linear(f'{o}attn/proj', f'{t}attn.proj')
    if vision.qk_normalization:
      rules += _norm(f'{o}attn/q_norm', f'{t}attn.q_norm', 'rms_norm')
      rules += _norm(f'{o}attn/k_norm', f'{t}attn.k_norm', 'rms_norm')
    rules += _linear(f'{o}mlp/fc1', f'{t}mlp.fc1') + _linear(f'{o}mlp/fc2', f'{t}mlp.fc2')
  return rules


def embedder_table(cfg: ml_collections.ConfigDict, ours: str = '') -> list[Rule]:
  """`ImageEmbedder` parameters (under our prefix `ours`) <- `vision_model.*`, `mlp1.*`."""
  return (vit_table(cfg.vision, f'{ours}vision_model/', 'vision_model.')
          + _norm(f'{ours}mlp1/norm', 'mlp1.0', 'layer_norm')
          + _linear(f'{ours}mlp1/fc1', 'mlp1.1') + _linear(f'{ours}mlp1/fc2', 'mlp1.3'))


def vision_config_from_hf(hf: dict) -> ml_collections.ConfigDict:
  """Our InternViT config from an HF `vision_config` dict; absent fields take
  `InternVisionConfig`'s own defaults, as HF would."""
  return ml_collections.ConfigDict({f: hf.get(f, d) for f, d in HF_VISION_DEFAULTS.items()})


def embedder_config_from_hf(hf_chat: dict, llm_hidden_size: int) -> ml_collections.ConfigDict:
  """Our `ImageEmbedder` config from an `InternVLChatConfig` dict."""
  return ml_collections.ConfigDict(dict(
      vision=vision_config_from_hf(hf_chat['vision_config']), llm_hidden_size=llm_hidden_size,
      downsample_ratio=hf_chat.get('downsample_ratio', 0.5),
      ps_version=hf_chat.get('ps_version', 'v1'), select_layer=hf_chat.get('select_layer', -1)))


def abstract_embedder(cfg: ml_collections.ConfigDict) -> ImageEmbedder:
  return params.abstract(lambda rngs: ImageEmbedder(cfg, rngs))


def init_embedder(cfg: ml_collections.ConfigDict, seed: int = 0) -> ImageEmbedder:
  return params.init(lambda rngs: ImageEmbedder(cfg, rngs), seed)


def vit_from_state_dict(checkpoint: dict[str, np.ndarray], vision: ml_collections.ConfigDict,
                        prefix: str = '', excused=()) -> InternViT:
  """A standalone InternViT from `InternVisionModel.state_dict()` keys."""
  return params.from_checkpoint(lambda rngs: InternViT(vision, rngs), vit_table(vision),
                                checkpoint, prefix=prefix, excused=excused)


def embedder_from_state_dict(checkpoint: dict[str, np.ndarray], cfg: ml_collections.ConfigDict,
                             excused=()) -> ImageEmbedder:
  """The image path from an InternVL/ARGenSeg state_dict; `excused` patterns name the
  other keys (e.g. 'language_model.*') that may stay unused."""
  return params.from_checkpoint(lambda rngs: ImageEmbedder(cfg, rngs), embedder_table(cfg),
                                checkpoint, excused=excused)
