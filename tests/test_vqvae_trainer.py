"""Mask VQ-VAE training: the loss falls on a tiny config; the shipped tokenizer round-trips."""

import json

import numpy as np

from argenseg_jax import bundled
from argenseg_jax.config_args import load_config
from argenseg_jax.training import vqvae_trainer
from argenseg_jax.vqvae_tokenizer import VQVAETokenizer

ASSET = bundled.MASK_VQVAE


def test_tiny_training_lowers_the_loss_and_writes_the_tokenizer(tmp_path):
  # num_masks == batch_size: every step sees the same 4 masks, so losses are comparable.
  cfg = load_config('configs/mask_vqvae.py:variant=tiny,steps=8,batch_size=4,num_masks=4,'
                    'lr=1e-2,warmup_steps=1,reinit_every=4,reinit_masks=4,eval_masks=8,'
                    'log_every=1,crowd_fraction=1')
  result = vqvae_trainer.train(cfg, tmp_path / 'tok', log=lambda *_: None)
  losses = [h['loss'] for h in result['history']]
  assert len(losses) == 8 and losses[-1] < 0.7 * losses[0], losses
  assert [s for s, _ in result['reinits']] == [4, 8]
  assert len(result['code_usage']) == len(cfg.model.patch_nums)
  assert sorted(p.name for p in (tmp_path / 'tok').iterdir()) == [
      'config.json', 'metrics.json', 'params.safetensors']
  tok = VQVAETokenizer.load(tmp_path / 'tok')
  assert tok.cfg.to_dict() == cfg.model.to_dict()


def test_shipped_mask_tokenizer_round_trips_held_out_masks():
  tok = VQVAETokenizer.load(ASSET)
  assert tok.patch_nums == (1, 2, 3, 4, 6, 8) and tok.cfg.resolution == 128
  assert sum(f.stat().st_size for f in ASSET.iterdir()) < 4 * 2 ** 20  # a few MB
  masks, grey = vqvae_trainer.synthetic_masks(16, seed=7, res=128)  # trained on seed 0
  masks, grey = masks[masks.any((1, 2))], grey[masks.any((1, 2))]
  codes = tok.encode(np.asarray(vqvae_trainer.to_vae_input(grey)))
  assert [c.shape[1] for c in codes] == [1, 4, 9, 16, 36, 64]
  pred = vqvae_trainer.binarize(tok.decode(codes))
  inter, union = (pred & masks).sum((1, 2)), (pred | masks).sum((1, 2))
  assert inter.sum() / union.sum() >= 0.85, inter / union
  metrics = json.loads((ASSET / 'metrics.json').read_text())  # 256 held-out masks
  assert metrics['ciou'] >= 0.9 and metrics['iou_mean'] >= 0.85, metrics
