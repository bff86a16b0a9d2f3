"""`task='argenseg'`: ARGenSeg trained from scratch or fine-tuned from a checkpoint.

`inputs(tokenizer, spec, batch_size)`: this process's grain dataset of padded batches
(`data_pipelines.train_pipeline.training_inputs(config)`). The loss is the original's
(`train_step.argenseg_loss`); the export is an inference checkpoint for `argenseg
segment` / `argenseg eval` with the run's tokenizer.
"""

import copy
import functools

import jax
import ml_collections
from etils import epath

from argenseg_jax import config_args, pretrained
from argenseg_jax.example_spec import spec_for
from argenseg_jax.models import var_vqvae_io
from argenseg_jax.models.argenseg import ARGenSeg
from argenseg_jax.tokenizer import load_tokenizer, scratch_tokenizer
from argenseg_jax.training import train_state, train_step


def _run_settings(model_cfg: ml_collections.ConfigDict, config: ml_collections.ConfigDict):
  """A copy of `model_cfg` with the train config's choices of how the model runs (not
  what it computes, so not exported): remat and the attention kernel
  (`layers/attention.py`; '' keeps the model config's)."""
  model_cfg = copy.deepcopy(model_cfg)
  model_cfg.llm.remat = config.remat
  if config.attention:
    model_cfg.llm.attention = model_cfg.image.vision.attention = config.attention
  return model_cfg


def resolve_model(config: ml_collections.ConfigDict, workdir: epath.Path):
  """`(model config, pretrained model or None, tokenizer, tokenizer dir)` of a run:
  from `init_from` (our checkpoint or a Hugging Face-style one) or a config spec."""
  if config.init_from:
    model, model_cfg = pretrained.load_pretrained(config.init_from)
    return model_cfg, model, load_tokenizer(config.init_from), config.init_from
  model_cfg = config_args.load_config(config.model)
  if not model_cfg.get('added_tokens'):
    raise ValueError(f'model {config.model!r} names no tokenizer to train from scratch '
                     '(variants tiny and small do): give such a config, or set init_from to '
                     'a checkpoint directory that holds its tokenizer.')
  tokenizer = scratch_tokenizer(model_cfg)
  if jax.process_index() == 0:
    tokenizer.save(workdir)
  return model_cfg, None, tokenizer, workdir


class ARGenSegTask:
  export_format = pretrained.DIR_FORMAT
  progress = 'loss {loss:.4f} (text {text_loss:.3f} gen {gen_loss:.3f})'
  loss = staticmethod(train_step.argenseg_loss)
  counts = train_step.TOKENS

  def __init__(self, config: ml_collections.ConfigDict, workdir: epath.Path, inputs):
    if 'image_tokenizer' not in config.frozen:
      raise ValueError("config.frozen must keep 'image_tokenizer': ARGenSeg's loss gives the "
                       'mask tokenizer no gradient (its codes are the targets), so training '
                       'it would only decay it.')
    self.config, self.inputs = config, inputs
    self.model_cfg, self.pretrained, self.tokenizer, self.tokenizer_dir = resolve_model(
        config, workdir)
    self.ctor = functools.partial(ARGenSeg, _run_settings(self.model_cfg, config))

  def batches(self, batch_size: int):
    spec = spec_for(self.model_cfg, length_buckets=tuple(self.config.data.length_buckets),
                    max_masks=self.config.data.max_masks)
    return self.inputs(self.tokenizer, spec, batch_size)

  def init_state(self, tx, lay: train_state.Layout) -> train_state.TrainState:
    """Random or `init_from` weights, with the `image_tokenizer` directory if given."""
    c = self.config
    state = train_state.init_state(self.ctor, tx, lay, c.frozen, c.seed, self.pretrained)
    if c.image_tokenizer:
      state = train_state.with_image_tokenizer(
          state, lay, var_vqvae_io.load_vqvae(c.image_tokenizer, self.model_cfg.vqvae)[0])
    return state

  def step_hook(self, lay: train_state.Layout) -> None:
    """Nothing runs between ARGenSeg's steps."""
    del lay

  def export(self, model, directory, overwrite: bool = False) -> None:
    """The model with its own config (without the run's remat and attention kernel)."""
    pretrained.save_pretrained(model, self.model_cfg, directory,
                               tokenizer_dir=self.tokenizer_dir, overwrite=overwrite)
