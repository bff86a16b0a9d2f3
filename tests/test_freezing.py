"""`config.frozen` alone decides what trains: the train step (gradient, update, weight
decay, optimizer state) and `argenseg plan` follow it, and an unknown part is an error."""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from argenseg_jax import config_args, example_spec, plan, sharding_dump
from argenseg_jax.sharding import make_mesh
from argenseg_jax.tokenizer import scratch_tokenizer
from argenseg_jax.training import optimizer, train_state, train_step
from data_pipelines import train_pipeline
from data_pipelines.synthetic_scenes import SyntheticScenes

TINY = 'argenseg:variant=tiny'
STEPS = 2


@pytest.fixture(scope='module', autouse=True)
def quick_compiles():
  """These tests check which weights move, not speed: XLA skips most optimisations
  (halves the compile time of the train steps)."""
  before = jax.config.values['jax_disable_most_optimizations']
  jax.config.update('jax_disable_most_optimizations', True)
  yield
  jax.config.update('jax_disable_most_optimizations', before)


class Tiny(NamedTuple):
  graphdef: nnx.GraphDef
  weights: nnx.State   # numpy
  batch: dict


@pytest.fixture(scope='module')
def tiny() -> Tiny:
  """The tiny ARGenSeg with N(0, 0.02) numpy weights (their values do not matter here,
  and compiling the random init would take longer than these tests) and one batch."""
  cfg = config_args.load_config(TINY)
  abstract = sharding_dump.abstract_model(cfg)  # read only; shared with `plan`
  rng = np.random.default_rng(0)
  weights = jax.tree.map(lambda s: (0.02 * rng.standard_normal(s.shape)).astype(s.dtype),
                         nnx.state(abstract))
  spec = example_spec.spec_for(cfg, length_buckets=(256,))
  batch = next(iter(train_pipeline.make_dataset(
      SyntheticScenes(8, seed=3, size=64), scratch_tokenizer(cfg), spec,
      train_pipeline.PipelineConfig(2))))
  return Tiny(nnx.graphdef(abstract), weights, batch)


def _copy(state) -> dict:
  """`{path: numpy copy}` of an nnx.State (the step donates its input)."""
  return {path: np.array(v.get_value() if hasattr(v, 'get_value') else v)
          for path, v in nnx.to_flat_state(state)}


def _under(flat: dict, part: str) -> dict:
  return {p: v for p, v in flat.items() if part in p}


def _image_loss(model, micro, rng, compute_dtype):
  """The image path alone (the frozen ViT, `mlp1`): compiles in a fraction of the time."""
  del rng
  return jnp.mean(model.vision.embed_image(micro['pixels'].astype(compute_dtype)) ** 2), {}


def _train(tiny: Tiny, *overrides, loss=train_step.argenseg_loss):
  """`(state before, state after STEPS steps of `loss`)` under the tiny train config's
  `frozen` and optimizer, with `overrides` as `--config.` gives them."""
  config = config_args.apply_overrides(config_args.load_config('train_tiny'), overrides)
  config.optimizer.warmup_ratio = 0.0  # the first step already moves the weights
  ctor = lambda _: nnx.merge(tiny.graphdef, jax.tree.map(jnp.asarray, tiny.weights))
  tx = optimizer.make_optimizer(config.optimizer, 100)
  mesh = make_mesh(devices=jax.devices()[:1])
  lay = train_state.layout(ctor, tx, mesh, config.frozen)
  state = train_state.init_state(ctor, tx, lay, config.frozen, model=ctor(None))
  before = jax.tree.map(np.array, state)
  step = train_step.make_train_step(lay, tx, mesh, loss=loss,
                                    schedule=optimizer.learning_rate(config.optimizer, 100))
  for _ in range(STEPS):
    state, metrics = step(state, train_step.global_batch(tiny.batch, mesh))
    assert np.isfinite(float(metrics['loss']))
  return before, state


def test_unfrozen_vit_trains(tiny):
  """Without weight decay, a change of the ViT's weights needs a nonzero gradient."""
  before, after = _train(tiny, 'frozen=image_tokenizer', 'optimizer.weight_decay=0')
  vit = _under(_copy(before.params), 'vision_model')
  assert vit and not _under(_copy(after.frozen), 'vision_model')
  moved = _under(_copy(after.params), 'vision_model')
  changed = [p for p in vit if not np.array_equal(vit[p], moved[p])]
  assert len(changed) > len(vit) // 2, sorted(set(vit) - set(changed))
  mu = [np.abs(v).sum() for path, v in jax.tree_util.tree_flatten_with_path(after.opt_state)[0]
        if '.mu' in jax.tree_util.keystr(path) and 'vision_model' in jax.tree_util.keystr(path)]
  assert mu and sum(mu) > 0  # Adam's first moment: the ViT's gradient is nonzero


def test_default_frozen_parts_stay_bit_identical(tiny):
  """Default `frozen` (ViT + VQ-VAE) and weight decay (which would move any weight the
  optimizer held, gradient or not): the frozen weights do not move and have no optimizer
  state, while `mlp1` trains."""
  before, after = _train(tiny, loss=_image_loss)
  frozen, kept, trained = _copy(before.frozen), _copy(after.frozen), _copy(after.params)
  for part in train_state.FROZEN_PARTS:
    assert _under(frozen, part) and not _under(trained, part)
    for path, value in _under(frozen, part).items():
      np.testing.assert_array_equal(kept[path], value, err_msg=str(path))
  opt_paths = [jax.tree_util.keystr(p)
               for p, _ in jax.tree_util.tree_flatten_with_path(after.opt_state)[0]]
  assert any('mlp1' in p for p in opt_paths)
  assert not [p for p in opt_paths if 'vision_model' in p or 'image_tokenizer' in p]
  mlp1 = _under(_copy(before.params), 'mlp1')
  assert any(not np.array_equal(v, trained[p]) for p, v in mlp1.items())


def test_plan_follows_frozen(capsys):
  kw = dict(batch=2, seq_len=256, device_memory='h100')
  default = plan.plan(TINY, 'data=1', **kw)
  vit = plan.plan(TINY, 'data=1', frozen=('image_tokenizer',), **kw)
  none = plan.plan(TINY, 'data=1', frozen=(), **kw)
  assert (default.memory['params frozen'] > vit.memory['params frozen']
          > none.memory['params frozen'] == 0)
  assert default.memory['params trainable'] < vit.memory['params trainable']
  assert vit.flops['ViT forward + backward'] == 3 * default.flops['ViT forward (frozen)']
  assert 'ViT forward (frozen)' not in vit.flops
  args = ['--config', TINY, '--mesh', 'data=1', '--device', 'h100', '--batch', '2',
          '--seq-len', '256']
  assert plan.main([*args, '--frozen', 'image_tokenizer']) == 0
  assert 'frozen: image_tokenizer' in capsys.readouterr().out
  assert plan.main([*args, '--frozen', '']) == 0
  assert 'frozen: nothing' in capsys.readouterr().out


def test_unknown_frozen_part_is_an_error(tiny, capsys):
  model = nnx.merge(tiny.graphdef, tiny.weights)
  with pytest.raises(ValueError, match=r"unknown frozen part 'vision_modle'.*image_tokenizer"
                     r".*language_model.*vision"):
    train_state.split(model, ('vision_modle', 'image_tokenizer'))
  with pytest.raises(ValueError, match="sequence of names, got the string 'vision_model'"):
    train_state.split(model, 'vision_model')
  assert train_state.check_frozen_parts([('vision', 'vision_model')], ('vision_model', '')) == (
      'vision_model',)  # `--config.frozen=` gives ('',): nothing frozen
  assert plan.main(['--config', TINY, '--mesh', 'data=1', '--device', 'h100', '--batch', '2',
                    '--frozen', 'vision_model,imagetokenizer']) == 2
  assert "unknown frozen part 'imagetokenizer'" in capsys.readouterr().err
