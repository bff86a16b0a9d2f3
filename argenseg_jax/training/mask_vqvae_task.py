"""`task='mask_vqvae'`: VAR's multi-scale VQ-VAE as the mask tokenizer of a domain
(`configs/mask_vqvae.py`, whose `model` is the VQ-VAE config).

Inputs: `(train, held_out)`, random-access sources of `{'mask': bool [R, R], 'grey':
uint8 [R, R]}`, the mask and channel 0 of its VQ-VAE input `mask_to_vae_input(mask *
255, R)` in 0..255, which `to_vae_input` maps back exactly
(`data_pipelines.synthetic_masks.mask_inputs(config)`). Batches: `train` shuffled by
`config.seed`, a new order every epoch; the iterator position is checkpointed.
Loss: `l1 * |rec - x| + l2 * (rec - x)^2 + vq * vq_loss` with the model's own training
forward (`VQVAE.__call__`: straight-through estimator, VAR's commitment/codebook loss);
pixels above black (shapes and their bicubic rims, ~3 % of a mask) weigh `1 + fg_weight`,
each term normalised by the total weight.
Codebook refresh: after every `refresh.every` steps up to `refresh.until`, one k-means
step over the quantizer inputs of `refresh.masks` training masks drawn by the step number
(a resumed run draws the same), codes hit by none re-drawn (`dead_codes` in the metrics).
Export: `save_vqvae` files and `metrics.json`, the round trip of the held-out masks
(`evaluate`).
"""

import functools
import json

import grain
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from etils import epath

from argenseg_jax import image_io
from argenseg_jax.evaluation import metrics
from argenseg_jax.layers.resize import area_resize
from argenseg_jax.models import var_vqvae_io
from argenseg_jax.models.var_vqvae import VQVAE, check_config
from argenseg_jax.training import train_state
from argenseg_jax.vqvae_tokenizer import VQVAETokenizer


def to_vae_input(grey: jax.Array) -> jax.Array:
  """uint8 `[B, R, R]` -> float32 `[B, R, R, 3]` in [-1, 1] (`x / 255 * 2 - 1`)."""
  x = jnp.asarray(grey).astype(jnp.float32) / 255.0 * 2.0 - 1.0
  return jnp.repeat(x[..., None], 3, axis=-1)


def code_usage(codes: list[np.ndarray], vocab_size: int) -> list[dict]:
  """Per scale: fraction of the vocabulary used and perplexity of the code histogram."""
  out = []
  for c in codes:
    p = np.bincount(c.reshape(-1), minlength=vocab_size) / c.size
    nz = p[p > 0]
    out.append(dict(used=float((p > 0).mean()), perplexity=float(np.exp(-(nz * np.log(nz)).sum()))))
  return out


def evaluate(tok: VQVAETokenizer, masks, batch_size: int = 32) -> dict:
  """Round trip of a source of `{'mask', 'grey'}` through `tok`: IoU of the binarised
  reconstruction (`image_io.binarize`) with the mask (mean, mean over non-empty masks,
  min, cIoU) and code usage per scale."""
  scores, codes = [], []
  for start in range(0, len(masks), batch_size):
    items = [masks[i] for i in range(start, min(start + batch_size, len(masks)))]
    c = tok.encode(np.asarray(to_vae_input(np.stack([it['grey'] for it in items]))))
    pred = image_io.binarize(tok.decode(c))
    scores += [metrics.score(p, it['mask']) for p, it in zip(pred, items)]
    codes.append(c)
  iou = np.array([s.iou for s in scores])
  nonempty = ~np.array([s.gt_empty for s in scores])
  per_scale = [np.concatenate(s) for s in zip(*codes)]
  vocab = tok.cfg.vocab_size
  return dict(iou_mean=float(iou.mean()), iou_nonempty=float(iou[nonempty].mean()),
              iou_min=float(iou.min()),
              ciou=metrics.iou(sum(s.inter for s in scores), sum(s.union for s in scores)),
              num_masks=len(scores), code_usage=code_usage(per_scale, vocab),
              codes_used_all_scales=np.unique(np.concatenate(
                  [c.reshape(-1) for c in per_scale])).size / vocab)


class MaskVQVAETask:
  export_format = var_vqvae_io.DIR_FORMAT
  progress = 'loss {loss:.4f} (l1 {l1:.3f} vq {vq:.3f})'
  counts = {'masks': lambda batch: batch['grey'].shape[0]}

  def __init__(self, config: ml_collections.ConfigDict, workdir: epath.Path, inputs):
    del workdir
    check_config(config.model)
    self.config, self.model_cfg = config, config.model
    self.train, self.held_out = inputs
    self.ctor = functools.partial(VQVAE, config.model)

  def batches(self, batch_size: int) -> grain.IterDataset:
    ds = grain.MapDataset.source(self.train).shuffle(seed=self.config.seed).repeat()
    ds = ds[jax.process_index()::jax.process_count()]
    return ds.to_iter_dataset().batch(batch_size, drop_remainder=True)

  def init_state(self, tx, lay: train_state.Layout) -> train_state.TrainState:
    return train_state.init_state(self.ctor, tx, lay, self.config.frozen, self.config.seed)

  def loss(self, model: VQVAE, micro: dict, rng: jax.Array, compute_dtype):
    """The weighted reconstruction + VQ loss of one micro batch, and its parts."""
    del rng
    w = self.config.loss
    x = to_vae_input(micro['grey'])
    weight = 1.0 + w.fg_weight * (x > -1.0).astype(jnp.float32)
    weight = weight / jnp.mean(weight)
    rec, vq = model(x.astype(compute_dtype))
    err = rec.astype(jnp.float32) - x
    l1, l2 = jnp.mean(weight * jnp.abs(err)), jnp.mean(weight * err ** 2)
    return w.l1_weight * l1 + w.l2_weight * l2 + w.vq_weight * vq, dict(l1=l1, l2=l2, vq=vq)

  def step_hook(self, lay: train_state.Layout):
    """`hook(state, step) -> (state, metrics)`: the codebook refresh when it is due."""
    r, seed = self.config.refresh, self.config.seed
    refresh = jax.jit(functools.partial(self._refresh, lay), donate_argnums=0,
                      out_shardings=(lay.shardings, None))

    def hook(state, step):
      if not r.every or step % r.every or step > r.until:
        return state, {}
      picked = np.random.default_rng([seed, step]).choice(len(self.train), r.masks,
                                                          replace=False)
      grey = np.stack([self.train[int(i)]['grey'] for i in picked])
      state, dead = refresh(state, grey, jax.random.fold_in(jax.random.key(seed), step))
      return state, {'dead_codes': dead}
    return hook

  def _refresh(self, lay, state, grey, key):
    """One k-means (Lloyd) step on the codebook over the quantizer inputs of `grey`
    `[N, R, R]` (`area(f - f_hat)` at every scale, the vectors the nearest-code search
    sees): each hit code moves to the mean of its vectors; codes hit by none are
    re-drawn from the vectors with probability proportional to their squared
    quantization error (k-means++ style, so they land where the codebook is poor, not
    on the all-black background). Returns `(state, number of dead codes)`."""
    model = train_state.model_of(lay, state)
    q = model.quantize
    emb = q.embedding.embedding[...]
    f = model.encode_features(to_vae_input(grey))
    codes, f_hats = q.features_to_codes(f)
    prev = [jnp.zeros_like(f)] + f_hats[:-1]
    vectors = jnp.concatenate([area_resize(f - fh, (pn, pn)).reshape(-1, f.shape[-1])
                               for fh, pn in zip(prev, q.patch_nums)])
    flat_codes = jnp.concatenate([c.reshape(-1) for c in codes])
    hits = jax.ops.segment_sum(jnp.ones_like(flat_codes), flat_codes, emb.shape[0])
    means = jax.ops.segment_sum(vectors, flat_codes, emb.shape[0]) / jnp.maximum(hits, 1)[:, None]
    err = jnp.sum((vectors - emb[flat_codes]) ** 2, axis=-1) + 1e-12
    drawn = vectors[jax.random.choice(key, vectors.shape[0], hits.shape, p=err / err.sum())]
    q.embedding.embedding[...] = jnp.where((hits > 0)[:, None], means, drawn)
    _, params, _ = train_state.split(model, self.config.frozen)
    return state.replace(params=params), jnp.sum(hits == 0)

  def export(self, model: VQVAE, directory, overwrite: bool = False) -> None:
    """The tokenizer files and `metrics.json` (`evaluate` on the held-out masks)."""
    out = var_vqvae_io.save_vqvae(model, self.model_cfg, directory, overwrite)
    result = evaluate(VQVAETokenizer(model, self.model_cfg), self.held_out)
    (out / 'metrics.json').write_text(json.dumps(result, indent=1))
