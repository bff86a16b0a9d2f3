
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from argenseg_jax.checkpoints import conversion
from argenseg_jax.config_args import load_config
from argenseg_jax.models import var_vqvae, var_vqvae_io
from tests.conftest import reference_file
from tests.helpers import CONVERTED_SHAPE, read_keys_tsv, small_vqvae_config


def test_phi_index_table_matches_original_float64_ties():
  assert var_vqvae.phi_index_per_scale(10, 4) == (0, 0, 1, 1, 1, 2, 2, 3, 3, 3)


def test_real_config_builds_abstractly_and_matches_checkpoint_keys():
  cfg = load_config('var_vqvae')
  model = var_vqvae_io.abstract_vqvae(cfg)
  shapes = {k: tuple(v.shape) for k, v in conversion.flatten(
      nnx.to_pure_dict(nnx.state(model, nnx.Param))).items()}
  assert sum(int(np.prod(s)) for s in shapes.values()) == 108_948_355
  table = var_vqvae_io.conversion_table(cfg)
  assert sorted(r.ours for r in table) == sorted(shapes)
  reference = read_keys_tsv(reference_file('var-vae-ch160v4096z32-keys.tsv'))
  expected = set(reference) - set(var_vqvae_io.EXCUSED_KEYS)
  assert sorted(r.theirs for r in table) == sorted(expected)
  for r in table:
    assert shapes[r.ours] == CONVERTED_SHAPE[r.transform](reference[r.theirs]), r


def test_512_schedule_config():
  cfg = load_config('var_vqvae:res=512')
  assert var_vqvae.num_tokens(cfg.patch_nums) == 2240
  assert var_vqvae.scale_slices(cfg.patch_nums)[-1] == (1216, 2240)
  assert var_vqvae.num_tokens(load_config('var_vqvae').patch_nums) == 680


def test_every_parameter_has_logical_axis_names():
  model = var_vqvae_io.abstract_vqvae(small_vqvae_config())
  params = nnx.state(model, nnx.Param)
  leaves = conversion.flatten(nnx.to_pure_dict(params))
  specs = conversion.flatten(nnx.to_pure_dict(nnx.get_partition_spec(params)))
  assert specs.keys() == leaves.keys()
  for path, spec in specs.items():
    assert len(spec) == leaves[path].ndim, path


def test_bad_configs_are_refused():
  with pytest.raises(ValueError, match='latent size'):
    load_config('var_vqvae:res=256,patch_nums=1+2+4+8')
  with pytest.raises(ValueError, match='unknown config arg'):
    load_config('var_vqvae:resolution=256')
  with pytest.raises(ValueError, match='variant'):
    load_config('var_vqvae:variant=huge')
  with pytest.raises(FileNotFoundError, match='known configs'):
    load_config('no_such_config')


def test_api_shapes_and_internal_consistency(small_model):
  """Sequential next-scale inputs equal the teacher-forcing inputs, and the sampler's
  accumulated f_hat decodes to the same image as `decode`."""
  model, cfg = small_model
  graphdef, state = nnx.split(model)
  x = jnp.asarray(np.random.default_rng(0).uniform(-1, 1, (2, 64, 64, 3)), jnp.float32)

  @jax.jit
  def run(state, x):
    m = nnx.merge(graphdef, state)
    codes = m.encode(x)
    f_hat = jnp.zeros((2, 4, 4, cfg.z_channels))
    inputs = []
    for si in range(len(cfg.patch_nums)):
      h = m.quantize.code_embeddings(si, codes[si])
      f_hat, nxt = m.quantize.next_autoregressive_input(si, f_hat, h)
      inputs.append(nxt.reshape(2, -1, cfg.z_channels))
    return (codes, m.quantize.codes_to_var_input(codes), jnp.concatenate(inputs[:-1], 1),
            m.decode(codes), m.fhat_to_img(f_hat), m.decode(codes, True))

  codes, var_in, seq_in, img, img_from_fhat, previews = run(state, x)
  assert [c.shape for c in codes] == [(2, pn * pn) for pn in cfg.patch_nums]
  assert all(c.dtype == jnp.int32 for c in codes)
  assert var_in.shape == (2, var_vqvae.num_tokens(cfg.patch_nums) - 1, cfg.z_channels)
  np.testing.assert_allclose(seq_in, var_in, atol=1e-5)
  # the decoder turns f32 summation-order noise (~1e-7) into up to ~2e-5 on [-1, 1] images
  np.testing.assert_allclose(img_from_fhat, img, atol=5e-5)
  assert previews.shape == (len(cfg.patch_nums), 2, 64, 64, 3)
  np.testing.assert_allclose(previews[-1], img, atol=5e-5)
  assert float(jnp.abs(img).max()) <= 1.0


def test_training_forward_loss_and_gradients(small_model):
  model, _ = small_model
  graphdef, params, rest = nnx.split(model, nnx.Param, ...)
  x = jnp.asarray(np.random.default_rng(1).uniform(-1, 1, (1, 64, 64, 3)), jnp.float32)

  def loss_fn(params):
    rec, vq_loss = nnx.merge(graphdef, params, rest)(x)
    return jnp.mean((rec - x) ** 2) + vq_loss, vq_loss

  (loss, vq_loss), grads = jax.jit(jax.value_and_grad(loss_fn, has_aux=True))(params)
  assert np.isfinite(float(loss)) and float(vq_loss) > 0
  g = nnx.to_pure_dict(grads)
  # Encoder gets gradient through the commitment term and the straight-through path.
  assert float(jnp.abs(g['encoder']['conv_in']['kernel']).sum()) > 0
  assert float(jnp.abs(g['decoder']['conv_out']['kernel']).sum()) > 0
