"""Defaults of every training config (`configs/train_*.py` override what differs).

  task             what is trained: 'argenseg', or 'mask_vqvae' (`configs/mask_vqvae.py`,
                   whose `model` is the VQ-VAE config itself and `data` its masks)
  model            config spec of the model trained from scratch (byte-level variants)
  init_from        or: our / Hugging Face-style checkpoint directory to fine-tune
  image_tokenizer  a VQ-VAE directory (the export of `configs/mask_vqvae.py` or `argenseg
                   convert vae` output) loaded into the frozen image tokenizer of a model
                   trained from scratch
  data.spec        the `--data` syntax of `data_pipelines/data_spec.py`
  data.meta        or: an InternVL / ARGenSeg meta file mixing several sources
                   (`data_pipelines/mixture.py`), its relative paths taken from
                   `data.meta_root` (default: the current directory, as the original)
  batch_size       global examples per optimizer step (split over processes), made of
                   `accum_steps` micro batches
  frozen           the one rule of what trains: module names (default the ViT `vision_model`
                   and the VQ-VAE `image_tokenizer`, spec §5.5) whose parameters get no
                   gradient, update or weight decay; `--config.frozen=image_tokenizer`
                   trains the ViT, `--config.frozen=` freezes nothing (`train_state.is_frozen`)
  remat            recompute each layer in the backward pass: true, false or a policy name
                   (`layers/stack.REMAT_POLICIES`)
  attention        the attention kernel, '' (the model config's), 'xla', 'cudnn' (GPU) or
                   'splash' (TPU) (`layers/attention.py`)
  mesh             data/fsdp/tensor sizes; data=-1 takes the remaining devices
  export_every     also write an inference checkpoint every N steps (0: only at the end)
"""

import ml_collections

from argenseg_jax.training.train_state import FROZEN_PARTS


def base_config() -> ml_collections.ConfigDict:
  return ml_collections.ConfigDict(dict(
      task='argenseg', model='argenseg:variant=tiny', init_from='', image_tokenizer='',
      data=dict(spec='synthetic:seed=0,n=4096', meta='', meta_root='',
                length_buckets=(1024, 2048, 4096, 8192), max_masks=1, workers=0),
      batch_size=8, accum_steps=1, num_steps=100, seed=0,
      optimizer=dict(lr=4e-5, warmup_ratio=0.03, b1=0.9, b2=0.999, eps=1e-8,
                     weight_decay=0.05, decay_ndim=0, grad_clip=1.0),
      compute_dtype='bfloat16', remat=True, attention='',
      frozen=FROZEN_PARTS,
      mesh=dict(data=-1, fsdp=1, tensor=1), distributed=False,
      checkpoint=dict(every=200, keep=1, async_save=True),
      log_every=10, export=True, export_every=0))
