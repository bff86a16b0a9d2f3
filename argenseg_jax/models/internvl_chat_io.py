"""Building and loading the InternVL2.5 chat model from an InternVL state_dict."""

import ml_collections
import numpy as np

from argenseg_jax.checkpoints import conversion, params
from argenseg_jax.models import image_embedder_io, internlm2_io
from argenseg_jax.models.internvl_chat import InternVLChat


def config_from_hf(chat: dict, img_context_token_id: int) -> ml_collections.ConfigDict:
  """Our config from an `InternVLChatConfig` dict; the `<IMG_CONTEXT>` id comes from the
  checkpoint's tokenizer."""
  llm = internlm2_io.config_from_hf(chat['llm_config'])
  return ml_collections.ConfigDict(dict(
      image=image_embedder_io.embedder_config_from_hf(chat, llm.hidden_size), llm=llm,
      img_context_token_id=img_context_token_id))


def conversion_table(cfg: ml_collections.ConfigDict) -> list[conversion.Rule]:
  return (image_embedder_io.embedder_table(cfg.image, ours='vision/')
          + internlm2_io.conversion_table(cfg.llm, theirs='language_model.',
                                          ours='language_model/'))


def from_state_dict(checkpoint: dict[str, np.ndarray], cfg: ml_collections.ConfigDict,
                    excused=()) -> InternVLChat:
  return params.from_checkpoint(lambda rngs: InternVLChat(cfg, rngs), conversion_table(cfg),
                                checkpoint, excused=excused)
