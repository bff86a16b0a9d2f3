"""Scanned layer stacks: one parameter layout, scanned or unrolled alike, per-layer remat,
conversion to and from per-layer keys, and checkpoints written before stacking."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from argenseg_jax.checkpoints import layer_stacks, params
from argenseg_jax.checkpoints.torch_files import CheckpointError
from argenseg_jax.config_args import load_config
from argenseg_jax.layers import stack
from argenseg_jax.models import image_embedder_io, internlm2_io
from argenseg_jax.models.intern_vit import InternViT
from argenseg_jax.models.internlm2 import InternLM2


def _llm_config(**overrides):
  cfg = internlm2_io.config_from_hf(dict(
      vocab_size=50, hidden_size=32, intermediate_size=48, num_hidden_layers=3,
      num_attention_heads=4, num_key_value_heads=2, rms_norm_eps=1e-5, bias=False,
      rope_theta=1e6, max_position_embeddings=64))
  cfg.update(overrides)
  return cfg


@pytest.fixture(scope='module')
def llm():
  return params.init(functools.partial(InternLM2, _llm_config()), seed=0)


def _with_config(model, ctor):
  """`model`'s parameters in a model built by `ctor` (another config, same shapes)."""
  return nnx.merge(nnx.graphdef(params.abstract(ctor)), nnx.state(model))


def _loss(model, ids):
  hidden, _ = model(model.embed(ids), jnp.broadcast_to(jnp.arange(ids.shape[1]), ids.shape),
                    jnp.ones(ids.shape, bool), model.empty_cache(*ids.shape))
  return jnp.mean(model.logits(hidden) ** 2)


@nnx.jit
def _loss_and_grad(model, ids):
  return nnx.value_and_grad(_loss)(model, ids)


def test_scanned_unrolled_and_remat_agree(llm):
  """The same stacked parameters scanned, unrolled and rematerialised (each policy):
  same outputs and gradients; every layer takes part (changing layer 2 changes them)."""
  ids = jax.random.randint(jax.random.key(1), (2, 7), 0, 50)
  want_loss, want_grad = _loss_and_grad(llm, ids)
  for overrides in (dict(scan_layers=False), dict(remat=True),
                    dict(remat='dots_with_no_batch_dims_saveable', scan_layers=False)):
    other = _with_config(llm, functools.partial(InternLM2, _llm_config(**overrides)))
    loss, grad = _loss_and_grad(other, ids)
    np.testing.assert_allclose(loss, want_loss, rtol=1e-6, err_msg=overrides)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7),
                 grad, want_grad)
  changed = nnx.clone(llm)
  changed.layers.feed_forward.w2[...] = changed.layers.feed_forward.w2[...].at[2].mul(2.0)
  assert not np.allclose(_loss_and_grad(changed, ids)[0], want_loss)


@functools.partial(nnx.jit, static_argnums=2)
def _vit(vit, pixels, num_layers):
  return vit(pixels, num_layers=num_layers)


def test_vit_layers_count_and_scan():
  """`num_layers` runs the first n layers of the stack (the reference's
  hidden_states[n]), scanned or unrolled."""
  cfg = load_config('internvl_vision:variant=tiny').vision
  vit = params.init(functools.partial(InternViT, cfg), seed=0)
  cfg.scan_layers = False
  unrolled = _with_config(vit, functools.partial(InternViT, cfg))
  pixels = jax.random.normal(jax.random.key(0), (1, 28, 28, 3))
  n = cfg.num_hidden_layers
  np.testing.assert_array_equal(_vit(vit, pixels, 0), vit.embeddings(pixels))
  first = stack.layer(vit.encoder.layers, 0)
  np.testing.assert_allclose(_vit(vit, pixels, 1), first(vit.embeddings(pixels)), atol=1e-6)
  last = _vit(vit, pixels, n)
  np.testing.assert_allclose(_vit(unrolled, pixels, n), last, atol=1e-6)
  assert not np.allclose(_vit(vit, pixels, n - 1), last, atol=1e-3)


def test_parameters_carry_the_layers_axis(llm):
  specs = nnx.get_partition_spec(nnx.state(llm.layers))
  assert tuple(specs['attention']['wq'].get_value()) == (stack.AXIS, 'embed', 'heads',
                                                         'head_dim')
  assert llm.layers.attention.wq.shape[0] == 3
  with pytest.raises(ValueError, match='remat must be'):
    stack.check_remat('everything')


def test_per_layer_views_round_trip():
  flat = {'a/layers/w': np.arange(12.0).reshape(3, 4), 'a/b': np.ones(2)}
  per_layer = layer_stacks.unstack(flat)
  assert sorted(per_layer) == ['a/b', 'a/layers/0/w', 'a/layers/1/w', 'a/layers/2/w']
  np.testing.assert_array_equal(per_layer['a/layers/2/w'], [8, 9, 10, 11])
  back = layer_stacks.stack(per_layer)
  np.testing.assert_array_equal(back['a/layers/w'], flat['a/layers/w'])
  assert layer_stacks.unstack_shapes({'a/layers/w': (3, 4)}) == {
      f'a/layers/{i}/w': (4,) for i in range(3)}
  with pytest.raises(ValueError, match='not 0..1'):
    layer_stacks.stack({'a/layers/0/w': np.ones(1), 'a/layers/2/w': np.ones(1)})


def test_checkpoint_before_stacking_and_padding_loads(llm):
  """Parameters saved one layer at a time with the unpadded vocabulary (checkpoints
  written before either change) load into the same model."""
  cfg = _llm_config()
  flat = layer_stacks.unstack({k: np.asarray(v) for k, v in params.flat_params(llm).items()})
  flat['output'] = flat['output'][:, :cfg.vocab_size]
  flat['tok_embeddings/embedding'] = flat['tok_embeddings/embedding'][:cfg.vocab_size]
  loaded = params.with_params(params.abstract(functools.partial(InternLM2, cfg)), flat)
  jax.tree.map(np.testing.assert_array_equal, nnx.state(loaded, nnx.Param),
               nnx.state(llm, nnx.Param))


def test_embedder_stack_converts_like_the_checkpoint():
  """The ViT stack fills from per-layer checkpoint keys and exports back to them."""
  cfg = load_config('internvl_vision:variant=tiny')
  model = image_embedder_io.init_embedder(cfg, seed=0)
  table = image_embedder_io.embedder_table(cfg)
  sd = params.to_state_dict(model, table)
  assert 'vision_model.encoder.layers.1.mlp.fc1.weight' in sd
  reloaded = params.from_checkpoint(functools.partial(type(model), cfg), table, sd)
  jax.tree.map(np.testing.assert_array_equal, nnx.state(reloaded, nnx.Param),
               nnx.state(model, nnx.Param))


def test_bf16_vit_with_stochastic_depth_scans():
  """Per-layer drop-path rates keep a bf16 carry bf16 (a float32 rate would change the
  scan's carry type)."""
  cfg = load_config('internvl_vision:variant=tiny,drop_path_rate=0.5').vision
  vit = params.init(functools.partial(InternViT, cfg), seed=0)
  half = nnx.merge(nnx.graphdef(vit), jax.tree.map(lambda a: a.astype(jnp.bfloat16),
                                                   nnx.state(vit)))
  pixels = jnp.ones((2, 28, 28, 3), jnp.bfloat16)
  out = nnx.jit(lambda m, x: m(x, drop_path_rng=jax.random.key(0)))(half, pixels)
  assert out.dtype == jnp.bfloat16


def test_wrong_parameters_are_named(llm, tmp_path):
  """A stack of another depth, or another vocabulary, is an error naming the parameter;
  a one-file checkpoint written one layer at a time loads."""
  flat = {k: np.asarray(v) for k, v in params.flat_params(llm).items()}
  abstract = params.abstract(functools.partial(InternLM2, _llm_config()))
  short = dict(flat, **{'layers/attention/wq': flat['layers/attention/wq'][:2]})
  with pytest.raises(CheckpointError, match='layers/attention/wq'):
    params.with_params(abstract, short)
  other_vocab = dict(flat, output=flat['output'][:, :-200])
  with pytest.raises(CheckpointError, match='output'):
    params.with_params(abstract, other_vocab)
  from safetensors.numpy import save_file  # pylint: disable=import-outside-toplevel
  save_file(layer_stacks.unstack(flat), str(tmp_path / 'per_layer.safetensors'))
  loaded = params.load_safetensors(abstract, tmp_path / 'per_layer.safetensors')
  np.testing.assert_array_equal(loaded.layers.feed_forward.w1[...],
                                flat['layers/feed_forward/w1'])
