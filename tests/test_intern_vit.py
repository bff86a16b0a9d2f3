import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from argenseg_jax.checkpoints import params
from argenseg_jax.config_args import load_config
from argenseg_jax.models import image_embedder_io
from argenseg_jax.models.projector import pixel_shuffle
from tests.conftest import reference_file
from tests.helpers import CONVERTED_SHAPE, export_state_dict, read_keys_tsv


def test_real_config_matches_argenseg_8b_vision_keys():
  cfg = load_config('internvl_vision')
  model = image_embedder_io.abstract_embedder(cfg)
  shapes = params.shapes(model)
  vit = sum(int(np.prod(s)) for k, s in shapes.items() if k.startswith('vision_model/'))
  assert vit == 304_012_288
  assert params.count(model) - vit == 33_570_816  # mlp1
  table = image_embedder_io.embedder_table(cfg)
  assert sorted(r.ours for r in table) == sorted(shapes)
  reference = {k: s for k, s in read_keys_tsv(reference_file('argenseg-8b-keys.tsv')).items()
               if k.startswith(('vision_model.', 'mlp1.'))}
  assert sorted(r.theirs for r in table) == sorted(reference)
  for r in table:
    assert shapes[r.ours] == CONVERTED_SHAPE[r.transform](reference[r.theirs]), r


def test_pixel_shuffle_channel_order():
  x = jnp.arange(4 * 4 * 2, dtype=jnp.float32).reshape(1, 4, 4, 2)
  y = pixel_shuffle(x)
  assert y.shape == (1, 2, 2, 8)
  i, j = 1, 0  # output cell: concat(x[2i,2j], x[2i,2j+1], x[2i+1,2j], x[2i+1,2j+1])
  want = jnp.concatenate([x[0, 2 * i, 2 * j], x[0, 2 * i, 2 * j + 1],
                          x[0, 2 * i + 1, 2 * j], x[0, 2 * i + 1, 2 * j + 1]])
  np.testing.assert_array_equal(y[0, i, j], want)
  with pytest.raises(ValueError, match='ps_version'):
    pixel_shuffle(x, ps_version='v1')


@pytest.fixture(scope='module')
def tiny_6b():
  """InternViT-6B switches (RMSNorm, qk normalisation) at tiny width, random weights."""
  cfg = load_config('internvl_vision:variant=6b,select_layer=-2')
  return image_embedder_io.init_embedder(cfg, seed=3), cfg


def test_6b_switches_convert_and_select_layer(tiny_6b):
  model, cfg = tiny_6b
  table = image_embedder_io.embedder_table(cfg)
  assert any(r.theirs.endswith('attn.q_norm.weight') for r in table)
  assert not any(r.theirs.endswith('norm1.bias') for r in table)  # RMSNorm: weight only
  sd = export_state_dict(model, table)
  sd['language_model.output.weight'] = np.zeros((2, 2), np.float32)
  reloaded = image_embedder_io.embedder_from_state_dict(sd, cfg, excused=('language_model.*',))
  pixels = jnp.asarray(np.random.default_rng(0).normal(size=(1, 112, 112, 3)), jnp.float32)
  a, b = model.features(pixels), reloaded.features(pixels)
  np.testing.assert_array_equal(a.embeds, b.embeds)
  # select_layer=-2 is hidden_states[-2]: the output of the second to last layer.
  layers = cfg.vision.num_hidden_layers
  np.testing.assert_allclose(a.vit_hidden, model.vision_model(pixels, num_layers=layers - 1),
                             atol=1e-6)
  assert not np.allclose(a.vit_hidden, model.vision_model(pixels), atol=1e-3)
  assert a.embeds.shape == (1, 16, cfg.llm_hidden_size)  # 8x8 patches -> 4x4 tokens


def test_drop_path_only_with_an_rng():
  cfg = load_config('internvl_vision:variant=tiny,drop_path_rate=0.5')
  model = image_embedder_io.init_embedder(cfg, seed=0)
  pixels = jnp.asarray(np.random.default_rng(1).normal(size=(4, 56, 56, 3)), jnp.float32)
  np.testing.assert_array_equal(model.features(pixels).embeds, model.embed_image(pixels))
  noisy = model.features(pixels, drop_path_rng=jax.random.key(0)).embeds
  assert not np.allclose(noisy, model.embed_image(pixels))


def test_unmapped_or_missing_keys_fail(tiny_6b):
  model, cfg = tiny_6b
  sd = export_state_dict(model, image_embedder_io.embedder_table(cfg))
  sd['language_model.output.weight'] = np.zeros((2, 2), np.float32)
  with pytest.raises(ValueError, match='language_model.output.weight'):
    image_embedder_io.embedder_from_state_dict(sd, cfg)  # not excused
  del sd['mlp1.3.bias']
  with pytest.raises(ValueError, match='mlp1.3.bias'):
    image_embedder_io.embedder_from_state_dict(sd, cfg, excused=('language_model.*',))


def test_gradient_reaches_the_vit():
  """Freezing is the train config's `frozen` alone (`tests/test_freezing.py`): the
  embedder passes gradient into the ViT, also under a saved config's old
  `freeze_backbone` key, which is ignored."""
  cfg = load_config('internvl_vision:variant=tiny')
  cfg.freeze_backbone = True
  graphdef, weights, rest = nnx.split(image_embedder_io.init_embedder(cfg), nnx.Param, ...)
  pixels = jnp.asarray(np.random.default_rng(2).normal(size=(1, 56, 56, 3)), jnp.float32)
  loss = lambda w: jnp.sum(nnx.merge(graphdef, w, rest).embed_image(pixels) ** 2)
  g = nnx.to_pure_dict(jax.grad(loss)(weights))
  assert all(float(jnp.abs(x).sum()) > 0 for x in jax.tree.leaves(g['vision_model']['encoder']))
  assert float(jnp.abs(g['mlp1']['fc1']['kernel']).sum()) > 0
