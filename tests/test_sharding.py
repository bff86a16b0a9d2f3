"""Models run sharded over a ('data', 'fsdp', 'tensor') mesh of 8 fake CPU devices."""

import jax
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
  encode = jax.jit(lambda s, x: nnx.merge(graphdef, s).img_to_idxBl(x),
                   in_shardings=(shardings, data))
  sharded = encode(sharded_state, jax.device_put(x, data))
  single = jax.jit(lambda s, x: nnx.merge(graphdef, s).img_to_idxBl(x))(state, x)
  for a, b in zip(sharded, single):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
