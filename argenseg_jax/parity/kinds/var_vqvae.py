"""Runs our VQ-VAE on a `var_vqvae` fixture (reference layout NCHW)."""

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from argenseg_jax.models import var_vqvae_io


def _nchw(x) -> np.ndarray:
  x = np.asarray(x)
  return np.moveaxis(x, -1, -3)


def _ref_codes(arrays: dict, prefix: str, num_scales: int) -> list[jax.Array]:
  return [jnp.asarray(arrays[f'{prefix}{si}'], jnp.int32) for si in range(num_scales)]


def _centre_crop(images: np.ndarray, resolution: int, size) -> np.ndarray:
  """The centre `size = (h, w)` window of `resolution`-square images `[..., H, W, C]`
  (top and left margins rounded down)."""
  if any(n > resolution for n in size):
    raise ValueError(f'fixture: crop {tuple(size)} is larger than its {resolution}px images.')
  (h, w), (top, left) = size, ((resolution - n) // 2 for n in size)
  return images[..., top:top + h, left:left + w, :]


def run(fixture, wanted) -> dict[str, np.ndarray]:
  cfg = var_vqvae_io.config_from_var_kwargs(fixture.config['ctor_kwargs'],
                                            fixture.config['input_resolution'])
  model, cfg = var_vqvae_io.load_vqvae(fixture.weights[0], cfg)
  graphdef, state = nnx.split(model)
  sn = len(cfg.patch_nums)
  x = jnp.asarray(fixture.inputs['x'].transpose(0, 2, 3, 1))
  rand = _ref_codes(fixture.inputs, 'rand_idx_s', sn)
  out = {}

  def want(*prefixes):
    return any(wanted(p) for p in prefixes)

  if want('f', 'idx_'):
    @jax.jit
    def encode(state, x):
      m = nnx.merge(graphdef, state)
      f = m.encode_features(x)
      return f, m.quantize.features_to_codes(f)[0]
    f, codes = encode(state, x)
    out['f'] = _nchw(f)
    out.update({f'idx_s{si}': np.asarray(c, np.int64) for si, c in enumerate(codes)})
    out['idx_all'] = np.concatenate([out[f'idx_s{si}'] for si in range(sn)], axis=1)

  var_input = jax.jit(lambda s, c: nnx.merge(graphdef, s).quantize.codes_to_var_input(c))
  if wanted('var_input_img') and 'idx_s0' in fixture.outputs:
    # Downstream of the nearest-code decisions: fed with the reference codes.
    out['var_input_img'] = np.asarray(var_input(state, _ref_codes(fixture.outputs, 'idx_s', sn)))
  if wanted('var_input_rand'):
    out['var_input_rand'] = np.asarray(var_input(state, rand))

  decode = jax.jit(lambda s, c, all_scales: nnx.merge(graphdef, s).decode(c, all_scales),
                   static_argnums=2)
  if wanted('img_from_idx_last') and 'idx_s0' in fixture.outputs:
    out['img_from_idx_last'] = _nchw(decode(state, _ref_codes(fixture.outputs, 'idx_s', sn), False))
  if want('img_all_rand'):
    imgs = np.asarray(decode(state, rand, True))  # [S, B, H, W, 3]
    if 'img_all_rand_crop' in fixture.outputs:  # a centre crop of the size stored
      size = fixture.outputs['img_all_rand_crop'].shape[-2:]
      out['img_all_rand_crop'] = _nchw(
          _centre_crop(imgs, fixture.config['input_resolution'], size))
    out['img_all_rand_stats'] = np.stack(
        [imgs.mean(axis=(2, 3, 4)), np.abs(imgs).mean(axis=(2, 3, 4))], axis=-1)

  if want('ar_'):
    @jax.jit
    def autoregress(state):
      m = nnx.merge(graphdef, state)
      f_hat = jnp.zeros((x.shape[0], cfg.patch_nums[-1], cfg.patch_nums[-1], cfg.z_channels))
      f_hats, maps = [], []
      for si in range(sn):
        h = m.quantize.code_embeddings(si, rand[si])
        f_hat, nxt = m.quantize.next_autoregressive_input(si, f_hat, h)
        f_hats.append(f_hat)
        maps.append(nxt)
      return jnp.stack(f_hats), maps[:-1]
    f_hats, maps = autoregress(state)
    out['ar_fhat'] = _nchw(f_hats)
    out.update({f'ar_next_map_s{si}': _nchw(m) for si, m in enumerate(maps)})

  if want('rec_forward', 'vq_loss'):
    rec, loss = jax.jit(lambda s, x: nnx.merge(graphdef, s)(x))(state, x)
    out['rec_forward'] = _nchw(rec)
    out['vq_loss'] = np.asarray(loss, np.float32).reshape(1)
  return out
