"""Models run sharded over a ('data', 'fsdp', 'tensor') mesh of 8 fake CPU devices."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from jax.sharding import NamedSharding, PartitionSpec

from argenseg_jax import sharding


def test_mesh_spec_rules():
  mesh = sharding.make_mesh(data=2, fsdp=2, tensor=2)
  assert sharding.mesh_spec(('embed', 'mlp'), (64, 128), mesh) == PartitionSpec('fsdp', 'tensor')
  # an odd size stays replicated; a mesh axis is used once per array
  assert sharding.mesh_spec(('embed', 'mlp'), (63, 128), mesh) == PartitionSpec(None, 'tensor')
  assert sharding.mesh_spec(('mlp', 'heads'), (4, 4), mesh) == PartitionSpec('tensor', None)
  with pytest.raises(ValueError, match='needs 16 devices'):
    sharding.make_mesh(data=2, fsdp=4, tensor=2)


def test_vqvae_encode_sharded_matches_single_device(small_model):
  model, _ = small_model
  assert jax.device_count() == 8
  mesh = sharding.make_mesh(data=2, fsdp=2, tensor=2)
  graphdef, state = nnx.split(model)
  shardings = sharding.param_shardings(model, mesh)
  sharded_state = jax.device_put(state, shardings)
  kernel = nnx.to_pure_dict(sharded_state)['decoder']['up'][0]['block'][0]['conv1']['kernel']
  assert kernel.sharding.spec == PartitionSpec(None, None, 'fsdp', 'tensor')
  x = np.random.default_rng(0).uniform(-1, 1, (4, 64, 64, 3)).astype(np.float32)
  data = NamedSharding(mesh, PartitionSpec('data'))
  encode = jax.jit(lambda s, x: nnx.merge(graphdef, s).encode(x),
                   in_shardings=(shardings, data))
  sharded = encode(sharded_state, jax.device_put(x, data))
  single = jax.jit(lambda s, x: nnx.merge(graphdef, s).encode(x))(state, x)
  for a, b in zip(sharded, single):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_parse_and_abstract_mesh():
  assert sharding.parse_mesh('fsdp=4,tensor=2') == {'data': 1, 'fsdp': 4, 'tensor': 2}
  for bad in ('model=2', 'fsdp=x', 'tensor=0', 'fsdp'):
    with pytest.raises(ValueError, match='AXIS=SIZE'):
      sharding.parse_mesh(bad)
  mesh = sharding.abstract_mesh(data=2, fsdp=64, tensor=4)  # more than the 8 local devices
  assert mesh.size == 512
  spec = sharding.mesh_spec(('embed', 'mlp'), (4096, 14336), mesh)
  assert spec == PartitionSpec('fsdp', 'tensor')


def test_fsdp_fallback_shards_large_unruled_arrays():
  mesh = sharding.abstract_mesh(fsdp=4, tensor=2)
  big = 8 * 2 ** 20
  # unannotated: the largest dimension divisible by 4 (1026 is not)
  assert sharding.fsdp_fallback(PartitionSpec(), (3, 1026, 160, 640), big, mesh) == \
      PartitionSpec(None, None, None, 'fsdp')
  # ruled on tensor only (e.g. a codebook): fsdp goes on the free dimension
  assert sharding.fsdp_fallback(PartitionSpec('tensor', None), (4096, 32), big, mesh) == \
      PartitionSpec('tensor', 'fsdp')
  # below the threshold, already on fsdp, or nothing divisible: unchanged
  assert sharding.fsdp_fallback(PartitionSpec(), (64, 64), 16384, mesh) == PartitionSpec()
  assert sharding.fsdp_fallback(PartitionSpec('fsdp', None), (64, 64), big, mesh) == \
      PartitionSpec('fsdp', None)
  assert sharding.fsdp_fallback(PartitionSpec(), (3, 5, 7), big, mesh) == PartitionSpec()
  # a layer stack: never on the layer axis, and the threshold applies to one layer
  assert sharding.fsdp_fallback(PartitionSpec(), (64, 16, 8), 64 * big, mesh,
                                stacked=True) == PartitionSpec(None, 'fsdp', None)
  assert sharding.fsdp_fallback(PartitionSpec(), (64, 16, 8), big, mesh) == \
      PartitionSpec('fsdp', None, None)
  assert sharding.fsdp_fallback(PartitionSpec(), (4, 64, 64), 3 * 2 ** 20 * 4, mesh,
                                stacked=True) == PartitionSpec()


def test_param_specs_apply_the_fallback_to_unannotated_params():
  class Model(nnx.Module):
    def __init__(self, rngs):
      self.free = nnx.Param(jax.random.normal(rngs.params(), (2, 1024, 1536)))
      self.small = nnx.Param(jax.random.normal(rngs.params(), (8, 8)))
  model = nnx.eval_shape(lambda: Model(nnx.Rngs(0)))
  specs = nnx.to_pure_dict(sharding.param_specs(model, sharding.abstract_mesh(fsdp=4, tensor=2)))
  assert specs == {'free': PartitionSpec(None, None, 'fsdp'), 'small': PartitionSpec(None, None)}


def test_activation_rules_and_constrain():
  mesh = sharding.make_mesh(data=2, fsdp=2, tensor=2)
  names = ('act_batch', 'act_len', 'act_embed')
  assert sharding.mesh_spec(names, (4, 8, 6), mesh, sharding.ACT_RULES) == \
      PartitionSpec(('data', 'fsdp'), None, 'tensor')
  # a batch that only splits over 'data' keeps that prefix; an odd one stays whole
  assert sharding.mesh_spec(names, (2, 8, 6), mesh, sharding.ACT_RULES)[0] == 'data'
  assert sharding.mesh_spec(names, (3, 8, 6), mesh, sharding.ACT_RULES)[0] is None
  x = jnp.arange(4 * 8 * 6, dtype=jnp.float32).reshape(4, 8, 6)
  assert sharding.constrain(x, names) is x  # no mesh set: a no-op
  f = jax.jit(lambda x: sharding.constrain(2 * x, names))
  with jax.set_mesh(mesh):
    y = f(x)
  assert y.sharding.spec == PartitionSpec(('data', 'fsdp'), None, 'tensor')
  np.testing.assert_array_equal(np.asarray(y), 2 * np.asarray(x))
  assert len(f(x).sharding.device_set) == 1  # outside the mesh again: unconstrained


def test_parameters_are_named_at_creation_and_placed_later():
  """Importing the package leaves flax's eager-sharding default alone, and a model builds
  outside any mesh under either setting, its parameters named by logical axes."""
  import flax  # pylint: disable=import-outside-toplevel

  from argenseg_jax.config_args import load_config  # pylint: disable=import-outside-toplevel
  from argenseg_jax.models.internlm2 import InternLM2  # pylint: disable=import-outside-toplevel
  assert nnx.using_eager_sharding() == flax.config.flax_always_shard_variable
  cfg = load_config('argenseg:variant=tiny').llm
  for eager in (True, False):
    with nnx.use_eager_sharding(eager):
      model = nnx.eval_shape(lambda: InternLM2(cfg, nnx.Rngs(0)))
    params = jax.tree.leaves(nnx.state(model, nnx.Param),
                             is_leaf=lambda x: isinstance(x, nnx.Variable))
    names = {v.get_metadata().get('out_sharding') for v in params}
    assert ('vocab', 'embed') in names and None not in names


def test_the_decoder_constrains_what_the_planner_sizes(monkeypatch):
  """Every activation `argenseg plan` sizes by `ACT_RULES` is one the decoder asks for."""
  from argenseg_jax.config_args import load_config  # pylint: disable=import-outside-toplevel
  from argenseg_jax.models import internlm2  # pylint: disable=import-outside-toplevel
  asked = set()
  monkeypatch.setattr(internlm2, 'constrain', lambda x, names: asked.add(tuple(names)) or x)
  cfg = load_config('argenseg:variant=tiny').llm
  model = internlm2.InternLM2(cfg, nnx.Rngs(0))
  x = jnp.zeros((1, 3, cfg.hidden_size))
  hidden, _ = model(x, jnp.arange(3)[None], jnp.ones((1, 3), bool), model.empty_cache(1, 4))
  model.logits(hidden)
  sized = {internlm2.RESIDUAL, internlm2.QUERIES, internlm2.KEYS, internlm2.HIDDEN_MLP,
           internlm2.LOGITS}
  assert asked == sized
  assert all(name in sharding.ACT_RULES for names in sized for name in names if name)
