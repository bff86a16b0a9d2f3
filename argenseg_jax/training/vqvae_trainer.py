"""Training VAR's multi-scale VQ-VAE as a mask tokenizer on synthetic scenes.

  python -m argenseg_jax.training.vqvae_trainer --config configs/mask_vqvae.py --out DIR

Data: `SyntheticScenes(num_masks, data_seed)` masks through `mask_to_vae_input` (PIL
bicubic 128 -> 512 -> 128, exactly what ARGenSeg's generator is trained to produce; the
round trip keeps every pixel on its side of 0, so nothing is lost for binary masks).
Loss: `l1 * |rec - x| + l2 * (rec - x)^2 + vq * vq_loss` with the model's own training
forward (`VQVAE.__call__`: straight-through estimator, VAR's commitment/codebook loss).
Dead codes (never hit across all scales by `reinit_masks` training masks) are re-drawn
from the encoder's per-scale residuals every `reinit_every` steps until `reinit_until`.
Evaluation on held-out masks (`eval.seed`): round-trip IoU with the ARGenSeg threshold
(grey > 0.5) and code usage per scale. Writes `save_vqvae` files + `metrics.json`.
"""

import argparse
import concurrent.futures
import functools
import json
import pathlib
import sys
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from flax import nnx

from argenseg_jax import config_args
from argenseg_jax.checkpoints import atomic
from argenseg_jax.image_io import signed_to_uint8
from argenseg_jax.layers.resize import area_resize
from argenseg_jax.models import var_vqvae_io
from argenseg_jax.models.var_vqvae import VQVAE
from argenseg_jax.mask_transforms import mask_to_vae_input
from data_pipelines.synthetic_scenes import Referent, Scene, SyntheticScenes


def synthetic_masks(num: int, seed: int, res: int, crowd_fraction: float = 0.0,
                    crowd_objects: tuple[int, int] = (6, 10)) -> tuple[np.ndarray, np.ndarray]:
  """`(masks bool [N, res, res], vae grey uint8 [N, res, res])` of `SyntheticScenes`.

  Mask `i` is the referent's mask of scene `i`, or with probability `crowd_fraction`
  the union of all objects of a scene with `crowd_objects` objects (more shape edges per
  training image). The grey image is channel 0 of `mask_to_vae_input(mask * 255, res)`
  in 0..255 (its three channels are equal); `to_vae_input` maps it back exactly.
  """
  referents = SyntheticScenes(num, seed, size=res)
  crowds = SyntheticScenes(num, seed, size=res, num_objects=crowd_objects)
  crowded = np.random.default_rng(seed).random(num) < crowd_fraction
  masks = np.stack([all_objects_mask(crowds.scene(i)) if c else referents.scene(i).mask()
                    for i, c in enumerate(crowded)])
  grey = np.stack([mask_to_vae_input(m.astype(np.uint8) * 255, res)[..., 0] for m in masks])
  return masks, np.rint((grey + 1) / 2 * 255).astype(np.uint8)


def all_objects_mask(scene: Scene) -> np.ndarray:
  """bool `[H, W]`: the union of every object of `scene`."""
  return scene.mask(Referent('all objects', '', tuple(range(len(scene.objects)))))


def to_vae_input(grey: jax.Array) -> jax.Array:
  """uint8 `[B, R, R]` -> float32 `[B, R, R, 3]` in [-1, 1] (`x / 255 * 2 - 1`)."""
  x = grey.astype(jnp.float32) / 255.0 * 2.0 - 1.0
  return jnp.repeat(x[..., None], 3, axis=-1)


def init_vqvae(cfg: ml_collections.ConfigDict, seed: int) -> VQVAE:
  """`var_vqvae_io.init_vqvae` compiled at XLA backend -O0: the same program, but
  XLA:CPU's optimising backend spends ~30 s on this run-once init."""
  graphdef = nnx.graphdef(var_vqvae_io.abstract_vqvae(cfg))
  init = jax.jit(lambda: nnx.state(VQVAE(cfg, nnx.Rngs(seed))),
                 compiler_options={'xla_backend_optimization_level': 0})
  return nnx.merge(graphdef, init())


def make_optimizer(tcfg: ml_collections.ConfigDict) -> optax.GradientTransformation:
  """AdamW, linear warmup then cosine to 0, global-norm clipping; decay on conv kernels."""
  schedule = optax.warmup_cosine_decay_schedule(
      0.0, tcfg.lr, tcfg.warmup_steps, max(tcfg.steps, tcfg.warmup_steps + 1))
  decay_mask = lambda params: jax.tree.map(lambda p: p.ndim == 4, params)
  return optax.chain(optax.clip_by_global_norm(tcfg.grad_clip),
                     optax.adamw(schedule, weight_decay=tcfg.weight_decay, mask=decay_mask))


class Trainer:
  """The model split into `graphdef, params, rest`, the optimizer state, and the train
  step and code re-init compiled once (ahead of time) for their static batch shapes."""

  def __init__(self, cfg: ml_collections.ConfigDict, model: VQVAE):
    self.cfg = cfg
    self.graphdef, self.params, self.rest = nnx.split(model, nnx.Param, ...)
    self.tx = make_optimizer(cfg.train)
    self.opt_state = self.tx.init(self.params)
    res, t = cfg.model.resolution, cfg.train
    grey = lambda n: jax.ShapeDtypeStruct((n, res, res), jnp.uint8)
    self.step = jax.jit(self._step, donate_argnums=(0, 1)).lower(
        self.params, self.opt_state, self.rest, grey(t.batch_size)).compile()
    self.refresh = jax.jit(self._refresh, donate_argnums=0).lower(
        self.params, self.rest, grey(t.reinit_masks), jax.random.key(0)).compile()
    self.round_trip = jax.jit(self._round_trip)

  def model(self, params=None, rest=None) -> VQVAE:
    return nnx.merge(self.graphdef, self.params if params is None else params,
                     self.rest if rest is None else rest)

  def _step(self, params, opt_state, rest, grey):
    """One AdamW step on a uint8 batch `[B, R, R]`; returns `(params, opt_state, metrics)`."""
    t = self.cfg.train
    x = to_vae_input(grey)
    # Shapes cover ~3% of a mask: pixels above black (shapes and their bicubic rims)
    # weigh 1 + fg_weight, each loss normalised by the total weight.
    w = 1.0 + t.fg_weight * (x > -1.0).astype(jnp.float32)
    w = w / jnp.mean(w)

    def loss_fn(p):
      rec, vq_loss = self.model(p, rest)(x)
      l1, l2 = jnp.mean(w * jnp.abs(rec - x)), jnp.mean(w * (rec - x) ** 2)
      loss = t.l1_weight * l1 + t.l2_weight * l2 + t.vq_weight * vq_loss
      return loss, dict(loss=loss, l1=l1, l2=l2, vq=vq_loss)

    grads, metrics = jax.grad(loss_fn, has_aux=True)(params)
    updates, opt_state = self.tx.update(grads, opt_state, params)
    metrics.update(grad_norm=optax.tree.norm(grads), update_norm=optax.tree.norm(updates))
    return optax.apply_updates(params, updates), opt_state, metrics

  def _refresh(self, params, rest, grey, key):
    """One k-means (Lloyd) step on the codebook over the quantizer inputs of `grey`
    `[N, R, R]` (`area(f - f_hat)` at every scale, the vectors the nearest-code search
    sees): each hit code moves to the mean of its vectors; codes hit by none are
    re-drawn from the vectors with probability proportional to their squared
    quantization error (k-means++ style, so they land where the codebook is poor, not
    on the all-black background). Returns `(params, num_dead)`."""
    model = self.model(params, rest)
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
    return nnx.state(model, nnx.Param), jnp.sum(hits == 0)

  def _round_trip(self, params, rest, grey):
    """uint8 `[B, R, R]` -> (codes per scale `[B, pn*pn]`, reconstruction `[B, R, R, 3]`)."""
    model = self.model(params, rest)
    codes = model.img_to_idxBl(to_vae_input(grey))
    return codes, model.idxBl_to_img(codes)


def binarize(recon: np.ndarray) -> np.ndarray:
  """Reconstructions `[B, R, R, 3]` in [-1, 1] -> bool `[B, R, R]` as ARGenSeg's
  evaluation: uint8 grey / 255 > 0.5."""
  return signed_to_uint8(recon).astype(np.float32).mean(-1) / 255 > 0.5


def code_usage(codes: list[np.ndarray], vocab_size: int) -> list[dict]:
  """Per scale: fraction of the vocabulary used and perplexity of the code histogram."""
  out = []
  for c in codes:
    p = np.bincount(c.reshape(-1), minlength=vocab_size) / c.size
    nz = p[p > 0]
    out.append(dict(used=float((p > 0).mean()), perplexity=float(np.exp(-(nz * np.log(nz)).sum()))))
  return out


def evaluate(trainer: Trainer, masks: np.ndarray, grey: np.ndarray, batch: int) -> dict:
  """Round-trip IoU (mean, mean over non-empty targets, cumulative) and code usage."""
  preds, codes = [], []
  for i in range(0, len(masks), batch):
    c, rec = trainer.round_trip(trainer.params, trainer.rest, grey[i:i + batch])
    preds.append(binarize(np.asarray(rec)))
    codes.append([np.asarray(x) for x in c])
  pred = np.concatenate(preds)
  inter, union = (pred & masks).sum((1, 2)), (pred | masks).sum((1, 2))
  iou = np.where(union == 0, 1.0, inter / np.maximum(union, 1))  # both empty: 1
  nonempty = masks.any((1, 2))
  per_scale = [np.concatenate(s) for s in zip(*codes)]
  return dict(iou_mean=float(iou.mean()), iou_nonempty=float(iou[nonempty].mean()),
              iou_min=float(iou.min()), ciou=float(inter.sum() / max(union.sum(), 1)),
              num_masks=len(masks),
              code_usage=code_usage(per_scale, trainer.cfg.model.vocab_size),
              codes_used_all_scales=float(np.unique(np.concatenate(
                  [c.reshape(-1) for c in per_scale])).size / trainer.cfg.model.vocab_size))


def train(cfg: ml_collections.ConfigDict, out_dir=None,
          log=functools.partial(print, flush=True)) -> dict:
  """Trains from scratch; writes the tokenizer and `metrics.json` to `out_dir` if given
  (checked first: a directory holding files we did not write is refused)."""
  if out_dir is not None:
    out_dir = atomic.check_target(out_dir, var_vqvae_io.DIR_FORMAT)
  t, res = cfg.train, cfg.model.resolution
  start = time.perf_counter()
  with concurrent.futures.ThreadPoolExecutor(1) as pool:  # data while XLA compiles
    train_data = pool.submit(synthetic_masks, t.num_masks, t.data_seed, res,
                             t.crowd_fraction, t.crowd_objects)
    eval_data = pool.submit(synthetic_masks, cfg.eval.num_masks, cfg.eval.seed, res)
    trainer = Trainer(cfg, init_vqvae(cfg.model, t.seed))
    log(f'model initialised and compiled at {time.perf_counter() - start:.1f}s')
    grey = train_data.result()[1]
  log(f'{t.num_masks} training masks ready at {time.perf_counter() - start:.1f}s')
  rng = np.random.default_rng(t.seed)
  key = jax.random.key(t.seed)
  history, reinits = [], []
  order = np.zeros(0, np.int64)
  for step in range(1, t.steps + 1):
    if len(order) < t.batch_size:
      order = np.concatenate([order, rng.permutation(t.num_masks)])
    batch, order = order[:t.batch_size], order[t.batch_size:]
    trainer.params, trainer.opt_state, metrics = trainer.step(
        trainer.params, trainer.opt_state, trainer.rest, grey[batch])
    if t.reinit_every and step % t.reinit_every == 0 and step <= t.reinit_until:
      picked = rng.choice(t.num_masks, t.reinit_masks, replace=False)
      trainer.params, dead = trainer.refresh(trainer.params, trainer.rest, grey[picked],
                                             jax.random.fold_in(key, step))
      reinits.append((step, int(dead)))
    if step % t.log_every == 0 or step == t.steps:
      m = {k: float(v) for k, v in metrics.items()}
      if not all(np.isfinite(v) for v in m.values()):
        raise FloatingPointError(f'non-finite metrics {m} between steps '
                                 f'{step - t.log_every} and {step}.')
      m.update(step=step, seconds=round(time.perf_counter() - start, 1))
      if t.eval_every and step % t.eval_every == 0:
        masks, grey_eval = eval_data.result()
        m['iou_mean'] = evaluate(trainer, masks[:64], grey_eval[:64], batch=32)['iou_mean']
      history.append(m)
      dead_note = f'  dead codes re-drawn {reinits[-1][1]}' if reinits else ''
      log(f'step {step}/{t.steps}  ' + '  '.join(
          f'{k} {m[k]:.4f}' for k in ('loss', 'l1', 'vq', 'grad_norm', 'iou_mean') if k in m)
          + f'  {m["seconds"]:.0f}s{dead_note}')
  train_seconds = time.perf_counter() - start
  result = evaluate(trainer, *eval_data.result(), batch=32)
  result.update(train_seconds=round(train_seconds, 1),
                eval_seconds=round(time.perf_counter() - start - train_seconds, 1),
                history=history, reinits=reinits, config=cfg.to_dict())
  log(f'trained in {train_seconds:.0f}s; held-out (seed {cfg.eval.seed}) IoU mean '
      f'{result["iou_mean"]:.4f}, non-empty {result["iou_nonempty"]:.4f}, cIoU '
      f'{result["ciou"]:.4f}; codes used per scale ' + ' '.join(
          f'{u["used"]:.2f}/{u["perplexity"]:.0f}' for u in result['code_usage']))
  if out_dir is not None:
    out = var_vqvae_io.save_vqvae(trainer.model(), cfg.model, out_dir)
    (out / 'metrics.json').write_text(json.dumps(result, indent=1, default=list))
    log(f'wrote {out}')
  return result


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--config', default='configs/mask_vqvae.py',
                      help='config file or name, optionally with :args')
  parser.add_argument('--out', required=True, help='output directory')
  args = parser.parse_args(argv)
  train(config_args.load_config(args.config), pathlib.Path(args.out))
  return 0


if __name__ == '__main__':
  sys.exit(main())
