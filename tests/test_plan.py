"""The memory / FLOPs planner: hand-checked parameter bytes, OVER flags, errors, and
the 8B plan on a pod-sized abstract mesh without allocating anything."""

import jax
import pytest
from flax import nnx

from argenseg_jax import plan, sharding
from argenseg_jax.config_args import load_config
from argenseg_jax.layers import logical

EIGHT_B = 'argenseg:variant=8b'


class _Leaf(nnx.Module):
  def __init__(self, shape, axes, rngs):
    self.w = logical.param(jax.random.normal(rngs.params(), shape), axes)
    self.b = nnx.Param(jax.random.normal(rngs.params(), (3,)))  # unannotated, odd


class _Vision(nnx.Module):
  def __init__(self, rngs):
    self.vision_model = _Leaf((64, 32), ('embed', 'mlp'), rngs)


class _Tiny(nnx.Module):
  def __init__(self, rngs):
    self.vision = _Vision(rngs)                                        # frozen
    self.language_model = _Leaf((128, 96), ('embed', 'vocab'), rngs)   # trainable


def test_param_bytes_per_device_by_hand():
  mesh = sharding.abstract_mesh(data=2, fsdp=4, tensor=2)
  table = plan.param_table(nnx.eval_shape(lambda: _Tiny(nnx.Rngs(0))), mesh)
  # frozen: w (64/4) x (32/2) = 256, b 3 (replicated) -> 259 elements per device
  # trainable: w (128/4) x (96/2) = 1536, b 3 -> 1539 elements per device
  frozen = ('vision_model',)
  assert plan.param_memory(table, mesh, plan.RECIPES['mixed'], frozen=frozen) == {
      'params trainable': 1539 * (4 + 2), 'params frozen': 259 * 4,
      'gradients': 1539 * 4, 'optimizer (AdamW)': 1539 * 8}
  accum = plan.param_memory(table, mesh, plan.RECIPES['f32'], grad_accum=4, frozen=frozen)
  assert accum == {'params trainable': 1539 * 4, 'params frozen': 259 * 4,
                   'gradients': 1539 * (4 + 4), 'optimizer (AdamW)': 1539 * 8}
  assert plan.param_memory(table, mesh, plan.RECIPES['mixed'], training=False,
                           frozen=frozen) == {'weights': (1539 + 259) * 2}
  unfrozen = plan.param_memory(table, mesh, plan.RECIPES['mixed'], frozen=())
  assert unfrozen['params frozen'] == 0 and unfrozen['optimizer (AdamW)'] == (1539 + 259) * 8


def test_device_names_and_sizes():
  assert plan.device('V5P').memory == 95e9 and plan.device('h100').peak_flops > 0
  assert plan.device('80GB').memory == 80e9
  assert plan.device('16GiB').memory == 16 * 2 ** 30
  with pytest.raises(ValueError, match=r"unknown device 'tpu9'.*v5p.*80GB"):
    plan.device('tpu9')


def test_cli_errors_are_clear(capsys):
  assert plan.main(['--mesh', 'fsdp=8', '--device', 'tpu9', '--batch', '8']) == 2
  assert "unknown device 'tpu9'" in capsys.readouterr().err
  assert plan.main(['--mesh', 'fsdp=8', '--device', 'h100', '--batch', '12']) == 2
  assert 'does not split evenly over data x fsdp = 8' in capsys.readouterr().err


def test_8b_plans_a_pod_from_shapes_alone():
  before = sum(a.nbytes for a in jax.live_arrays())
  p = plan.plan(EIGHT_B, 'data=1,fsdp=64,tensor=4', batch=128, seq_len=8192,
                device_memory='v5e', grad_accum=2)
  assert p.num_devices == 256 > jax.device_count()
  assert sum(a.nbytes for a in jax.live_arrays()) - before < 2 ** 20  # nothing allocated
  # 7.808 B trainable parameters (+ the vocabulary padding to 96768 = 756 x 128, so
  # that the embedding table and head split over tensor too), 6 bytes each, over all
  # 256 devices
  padding = 2 * (96768 - 96653) * 4096
  assert p.memory['params trainable'] == pytest.approx(6 * (7.808e9 + padding) / 256,
                                                       rel=0.01)
  assert p.fits and p.status == 'OK'
  assert 'OK' in plan.format_plan(p) and '256 x TPU v5e' in plan.format_plan(p)


def test_8b_over_and_inference_kv_cache():
  p = plan.plan(EIGHT_B, {'data': 1, 'fsdp': 1, 'tensor': 1}, batch=8, seq_len=8192,
                device_memory='80GB', grad_accum=8)
  assert not p.fits and p.status == 'OVER' and 'OVER' in plan.format_plan(p)
  # KV cache: 2 x layers x kv_heads x head_dim x (prompt + answer + 680) x batch x 2 bytes
  p = plan.plan(EIGHT_B, 'fsdp=4,tensor=2', batch=8, seq_len=1000, device_memory='h100',
                training=False, answer_len=20)
  assert p.memory['KV cache'] == 2 * 32 * 8 * 128 * (1000 + 20 + 680) * 8 * 2 / (4 * 2)


def test_attention_kernel_and_chunked_loss():
  """The 8B recipe on 8 x H100: XLA's attention holds one layer's scores (32 heads x
  8192^2 x 14 bytes per sample); the fused kernels do not, and then the chunked loss
  (3 x [1024, 96768] f32) stays below one layer's recompute."""
  kw = dict(batch=128, seq_len=8192, device_memory='h100', grad_accum=16)
  xla = plan.plan(EIGHT_B, 'fsdp=8', attention='xla', **kw)
  assert xla.memory['activations transient'] > 32 * 8192 ** 2 * 14 > 30e9
  for kernel in ('cudnn', 'splash'):
    fused = plan.plan(EIGHT_B, 'fsdp=8', attention=kernel, **kw)
    assert f'{kernel} attention' in fused.setting
    assert fused.memory['activations transient'] < 5e9 < xla.memory['activations transient']
  assert plan.plan(EIGHT_B, 'fsdp=8', **kw).setting == xla.setting  # the config's: xla
  act = plan.Activations(load_config(EIGHT_B), plan._mesh('fsdp=8'), 2, 'splash')
  assert act.logits(1, 1024) == 1024 * 96768 * 4 and act.scores(1, 8192, 8192) == 0
  with pytest.raises(ValueError, match='attention must be one of'):
    plan.plan(EIGHT_B, 'fsdp=8', attention='flash', **kw)
