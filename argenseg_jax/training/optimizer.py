"""The original's optimizer: AdamW, linear warmup then cosine decay to 0, global-norm
clipping, one weight-decay group over every trainable parameter (spec §5.9), or with
`decay_ndim=N` over the N-dimensional ones only (the mask VQ-VAE: 4, conv kernels). It
sees only the trainable parameters: the frozen ones (`config.frozen`) get no update,
weight decay or optimizer state."""

import jax
import ml_collections
import optax


def learning_rate(cfg: ml_collections.ConfigDict, total_steps: int) -> optax.Schedule:
  """`warmup_ratio * total_steps` linear steps from 0 to `lr`, then cosine to 0."""
  warmup = int(round(cfg.warmup_ratio * total_steps))
  return optax.warmup_cosine_decay_schedule(
      init_value=0.0, peak_value=cfg.lr, warmup_steps=warmup,
      decay_steps=max(total_steps, warmup + 1), end_value=0.0)


def make_optimizer(cfg: ml_collections.ConfigDict,
                   total_steps: int) -> optax.GradientTransformation:
  """cfg: lr, warmup_ratio, b1, b2, eps, weight_decay, decay_ndim (0: every parameter),
  grad_clip (0: none)."""
  def decayed(params):
    return jax.tree.map(lambda p: p.ndim == cfg.decay_ndim, params)
  parts = [optax.clip_by_global_norm(cfg.grad_clip)] if cfg.grad_clip else []
  parts.append(optax.adamw(learning_rate(cfg, total_steps), b1=cfg.b1, b2=cfg.b2,
                           eps=cfg.eps, weight_decay=cfg.weight_decay,
                           mask=decayed if cfg.decay_ndim else None))
  return optax.chain(*parts)
