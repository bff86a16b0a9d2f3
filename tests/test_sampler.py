"""The next-scale sampler (`argenseg_jax/sampler.py`).

Against the original: the golden ARGenSeg's greedy answers and codes, whole-scale and
raster order. Batch invariance, every row's answer its own whatever the batch around it,
on `scripted_argenseg`: its text follows a script chosen per row by the
prompt's last token, so rows reach `<ge_start>` at different steps and draw 0, 1 or 2
masks (one also runs out of its mask budget); its codes depend on the row's image and
prompt. Each row's tokens and codes in a batch must equal those of the row alone.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from argenseg_jax import sampler
from argenseg_jax.config_args import load_config
from argenseg_jax.example_spec import spec_for
from argenseg_jax.sampler import SamplerConfig
from argenseg_jax.segmenter import Segmenter
from tests.conftest import golden_fixture
from tests.helpers import golden_prompts
from tests.scripted_model import CONFIG, scripted_argenseg

EOS = 2
MAX_NEW, MASKS = 8, 2


def _b(c: str) -> int:
  return 3 + ord(c)  # ByteTokenizer: byte b is id 3 + b


def _script(tokens) -> dict[int, int]:
  """Each kind of row is named by its prompt's last byte (see the module docstring)."""
  s = {tokens.gen_end_token_id: _b(','), _b(','): tokens.gen_start_token_id}
  chains = ['x', 'ab', 'lmnopq', 'efghijk']  # then <ge_start>: masks at steps 0, 1, 5, 6
  for chain in chains:
    for a, b in zip(chain, chain[1:]):
      s[_b(a)] = _b(b)
    s[_b(chain[-1])] = tokens.gen_start_token_id
  s.update({_b('r'): _b('s'), _b('s'): EOS})  # no mask
  return s


# Per kind: (the steps its masks are drawn at, masks, out of masks) with MAX_NEW, MASKS.
KINDS = {'x': ((0, 2), 2, True), 'a': ((1, 3), 2, True), 'l': ((5, 7), 2, False),
         'e': ((6,), 1, False), 'r': ((), 0, False)}


@pytest.fixture(scope='module')
def scripted():
  model, cfg = scripted_argenseg(_script(load_config(CONFIG).tokens))
  graphdef, state = nnx.split(model)
  spec = spec_for(cfg)

  @functools.partial(jax.jit, static_argnums=4)
  def run(state, ids, mask, pixels, guidance_scale):
    return sampler.generate(nnx.merge(graphdef, state), ids, mask, pixels,
                            jnp.ones((ids.shape[0],), jnp.int32),
                            SamplerConfig(max_new_tokens=MAX_NEW, mask_passes=MASKS,
                                          eos_token_id=EOS, guidance_scale=guidance_scale),
                            jax.random.key(0))

  def generate(prompts, pixels, guidance_scale=0.0):
    width = max(len(p) for p in prompts)
    ids = np.array([[EOS] * (width - len(p)) + p for p in prompts], np.int32)
    mask = np.array([[0] * (width - len(p)) + [1] * len(p) for p in prompts], bool)
    out = run(state, ids, mask, pixels, guidance_scale)
    return sampler.SamplerOutput(*(np.asarray(x) for x in out))

  return cfg, spec, generate


def _prompt(cfg, spec, rng, kind: str, text_len: int) -> list[int]:
  """`<s> <img> <IMG_CONTEXT>... </img>` random bytes, then the kind's last byte."""
  ids = cfg.tokens
  text = rng.integers(_b('A'), _b('Z') + 1, text_len).tolist()
  return ([1, ids.img_context_token_id - 2] + [ids.img_context_token_id] * spec.image_tokens
          + [ids.img_context_token_id - 1] + text + [_b(kind)])


def _rows(cfg, spec, n: int, seed: int):
  """`n` prompts cycling through the kinds (two prompt lengths) and their images."""
  rng = np.random.default_rng(seed)
  kinds = [list(KINDS)[i % len(KINDS)] for i in range(n)]
  prompts = [_prompt(cfg, spec, rng, k, 3 + 9 * (i % 2)) for i, k in enumerate(kinds)]
  pixels = rng.normal(size=(n, spec.image_size, spec.image_size, 3)).astype(np.float32)
  return kinds, prompts, pixels


def _row(out, i):
  n = int(out.num_masks[i])
  return out.tokens[i], out.codes[i, :n], n, bool(out.out_of_masks[i])


def _assert_same_row(out, i, alone, j=0):
  tokens, codes, n, over = _row(out, i)
  tokens1, codes1, n1, over1 = _row(alone, j)
  np.testing.assert_array_equal(tokens, tokens1, err_msg=f'row {i}: tokens')
  assert (n, over) == (n1, over1), f'row {i}: masks {n} (out {over}) vs alone {n1} ({over1})'
  np.testing.assert_array_equal(codes, codes1, err_msg=f'row {i}: codes')


def test_every_row_equals_its_batch_of_one(scripted):
  cfg, spec, generate = scripted
  kinds, prompts, pixels = _rows(cfg, spec, 10, seed=0)
  out = generate(prompts, pixels)
  gs, ge = cfg.tokens.gen_start_token_id, cfg.tokens.gen_end_token_id
  for i, kind in enumerate(kinds):  # the script played out as designed
    steps, masks, over = KINDS[kind]
    assert np.flatnonzero(out.tokens[i] == ge).tolist() == list(steps), (i, kind)
    assert (int(out.num_masks[i]), bool(out.out_of_masks[i])) == (masks, over), (i, kind)
    assert gs not in out.tokens[i]
    _assert_same_row(out, i, generate([prompts[i]], pixels[i:i + 1]))
  first = out.codes[[i for i, k in enumerate(kinds) if KINDS[k][1]], 0]
  assert len({c.tobytes() for c in first}) == len(first)  # every image gives its own mask


def test_order_and_neighbours_do_not_matter(scripted):
  cfg, spec, generate = scripted
  _, prompts, pixels = _rows(cfg, spec, 10, seed=1)
  out = generate(prompts, pixels)
  order = np.random.default_rng(2).permutation(len(prompts))
  shuffled = generate([prompts[i] for i in order], pixels[order])
  for j, i in enumerate(order):
    _assert_same_row(shuffled, j, out, i)
  # rows with long answers next to rows that draw their masks early
  late = [i for i in range(len(prompts)) if i % len(KINDS) in (2, 3)]
  mixed = generate(prompts[:2] + [prompts[i] for i in late], pixels[[0, 1] + late])
  for j, i in enumerate(late):
    _assert_same_row(mixed, 2 + j, generate([prompts[i]], pixels[i:i + 1]))
    assert int(mixed.num_masks[2 + j]) > 0


def test_guided_pairs_equal_their_batch_of_one(scripted):
  """CFG: rows `[cond; uncond]`; each pair alone gives the same answer and codes."""
  cfg, spec, generate = scripted
  kinds, cond, pixels = _rows(cfg, spec, 5, seed=3)
  rng = np.random.default_rng(4)
  uncond = [_prompt(cfg, spec, rng, 'r', 5) for _ in cond]
  out = generate(cond + uncond, np.concatenate([pixels, pixels]), guidance_scale=2.0)
  n = len(cond)
  for i, kind in enumerate(kinds):
    alone = generate([cond[i], uncond[i]], pixels[[i, i]], guidance_scale=2.0)
    _assert_same_row(out, i, alone, 0)
    _assert_same_row(out, n + i, alone, 1)
    assert int(out.num_masks[i]) == int(out.num_masks[n + i]) == KINDS[kind][1]
    np.testing.assert_array_equal(out.codes[i], out.codes[n + i])  # one mask per pair
  plain = generate(cond, pixels)
  guided = [i for i, k in enumerate(kinds) if KINDS[k][1]]
  assert any((out.codes[i, 0] != plain.codes[i, 0]).any() for i in guided)  # guidance acts


def test_bucketed_generation_matches_the_reference(golden_segmenter):
  prompts, pixels = golden_prompts('b1')
  ref = np.load(golden_fixture('argenseg') / 'outputs.npz')
  out = golden_segmenter.generate_ids(prompts, pixels)  # padded 280 -> 320 tokens
  np.testing.assert_array_equal(np.asarray(out.tokens), ref['b1_generated_ids'])
  np.testing.assert_array_equal(np.asarray(out.codes)[:, 0], ref['b1_visual_ids_all'])
  # the same row next to another prompt: batching changes neither (rows that reach
  # <ge_start> at different steps: tests/test_sampler.py)
  other, _ = golden_prompts('cfg')
  both = golden_segmenter.generate_ids([prompts[0], other[1]], np.concatenate([pixels, pixels]))
  np.testing.assert_array_equal(np.asarray(both.tokens)[:1], ref['b1_generated_ids'])
  np.testing.assert_array_equal(np.asarray(both.codes)[0, 0], ref['b1_visual_ids_all'][0])
  alone = golden_segmenter.generate_ids([other[1]], pixels)
  np.testing.assert_array_equal(np.asarray(both.tokens)[1], np.asarray(alone.tokens)[0])


def test_pick_codes_sampling_options():
  logits = jnp.log(jnp.array([[0.05, 0.6, 0.3, 0.05]] * 256))
  greedy = sampler.pick_codes(logits, SamplerConfig(), jax.random.key(0))
  assert (greedy == 1).all()
  top1 = sampler.pick_codes(logits, SamplerConfig(temperature=1.0, top_k=1), jax.random.key(1))
  assert (top1 == 1).all()
  top2 = sampler.pick_codes(logits, SamplerConfig(temperature=1.0, top_k=2), jax.random.key(2))
  assert set(np.asarray(top2).tolist()) == {1, 2}
  nucleus = sampler.pick_codes(logits, SamplerConfig(temperature=1.0, top_p=0.5), jax.random.key(3))
  assert (nucleus == 1).all()  # 0.6 alone covers half the mass


def test_raster_order_gives_the_same_codes(golden_checkpoint):
  """Within a scale every slot's input comes from earlier scales, so one token per pass
  and one scale per pass see the same keys: the codes must agree."""
  raster = Segmenter.load(golden_checkpoint,
                         sampler_config=SamplerConfig(max_new_tokens=3, raster=True))
  prompts, pixels = golden_prompts('b1')
  ref = np.load(golden_fixture('argenseg') / 'outputs.npz')
  out = raster.generate_ids(prompts, pixels)
  np.testing.assert_array_equal(np.asarray(out.codes)[:, 0], ref['b1_visual_ids_all'])
