"""The sampler and the segment API end to end, on the golden ARGenSeg (tiny, random)."""

import json

import numpy as np
import pytest
import sentencepiece as spm
from PIL import Image

from argenseg_jax import cli, pretrained
from argenseg_jax.checkpoints import hf_dir
from argenseg_jax.models import var_vqvae_io
from argenseg_jax.sampler import SamplerConfig
from argenseg_jax.segmenter import Segmenter
from argenseg_jax.tokenizer import Tokenizer
from tests.conftest import golden_fixture
from tests.helpers import make_hf_dir


@pytest.fixture(scope='module')
def checkpoint(tmp_path_factory):
  """Our checkpoint of the golden model plus a sentencepiece model trained here whose
  ids stay below the fixture's 1000 text ids."""
  root = tmp_path_factory.mktemp('argenseg')
  fixture = golden_fixture('argenseg')
  hf = make_hf_dir(fixture, root / 'hf')
  corpus = root / 'corpus.txt'
  corpus.write_text('\n'.join(['Please segment the red circle.', 'Sure, the result.'] * 50))
  spm.SentencePieceTrainer.train(
      input=str(corpus), model_prefix=str(hf / 'tokenizer'), vocab_size=300,
      hard_vocab_limit=False, model_type='bpe', byte_fallback=True, add_dummy_prefix=False,
      user_defined_symbols=['<|im_start|>', '<|im_end|>'], minloglevel=2)
  config = json.loads((fixture / 'config.json').read_text())
  vqvae = var_vqvae_io.config_from_var_kwargs(config['image_tokenizer_VQVAE_kwargs'], 256)
  return pretrained.convert_pretrained(hf, root / 'ours', vqvae_config=vqvae)


@pytest.fixture(scope='module')
def segmenter(checkpoint):
  return Segmenter.load(checkpoint, sampler=SamplerConfig(max_new_tokens=3))


def _fixture_prompt(name):
  x = np.load(golden_fixture('argenseg') / 'inputs.npz')
  ids, mask = x[f'gen_input_ids_{name}'], x[f'gen_attention_mask_{name}'].astype(bool)
  pixels = x['pixel_values'].transpose(0, 2, 3, 1)
  return [row[m].tolist() for row, m in zip(ids, mask)], pixels


def test_bucketed_generation_matches_the_reference(segmenter):
  prompts, pixels = _fixture_prompt('b1')
  ref = np.load(golden_fixture('argenseg') / 'outputs.npz')
  out = segmenter.generate_ids(prompts, pixels)  # padded 280 -> 320 tokens
  np.testing.assert_array_equal(np.asarray(out.tokens), ref['b1_generated_ids'])
  np.testing.assert_array_equal(np.asarray(out.codes)[:, 0], ref['b1_visual_ids_all'])
  # the same row next to another prompt: batching changes neither (rows that reach
  # <ge_start> at different steps: tests/test_sampler.py)
  other, _ = _fixture_prompt('cfg')
  both = segmenter.generate_ids([prompts[0], other[1]], np.concatenate([pixels, pixels]))
  np.testing.assert_array_equal(np.asarray(both.tokens)[:1], ref['b1_generated_ids'])
  np.testing.assert_array_equal(np.asarray(both.codes)[0, 0], ref['b1_visual_ids_all'][0])
  alone = segmenter.generate_ids([other[1]], pixels)
  np.testing.assert_array_equal(np.asarray(both.tokens)[1], np.asarray(alone.tokens)[0])


def test_mask_images_and_segment(segmenter):
  prompts, pixels = _fixture_prompt('b1')
  out = segmenter.generate_ids(prompts, pixels)
  ref = np.load(golden_fixture('argenseg') / 'outputs.npz')
  decoded = segmenter.decode_masks(np.asarray(out.codes)[:, 0])[0]
  assert np.mean(decoded != ref['b1_mask_uint8']) < 1e-3  # exact up to float truncation
  image = Image.new('RGB', (320, 200), (30, 120, 200))
  [result] = segmenter.segment([image], ['Please segment the red circle.'])
  assert isinstance(result.text, str) and len(result.token_ids) <= 3
  assert all(m.shape == (200, 320) and m.dtype == bool for m in result.masks)


def test_cli_segment(checkpoint, tmp_path, capsys):
  image = tmp_path / 'img.png'
  Image.new('RGB', (64, 48), (200, 10, 10)).save(image)
  assert cli.main(['segment', '--checkpoint', str(checkpoint), '--image', str(image),
                   '--prompt', 'Please segment the red circle.', '--max-new-tokens', '4',
                   '--out', str(tmp_path / 'm.png')]) == 0
  assert "'Please segment the red circle.' ->" in capsys.readouterr().out
  assert cli.main(['segment', '--checkpoint', str(checkpoint)]) == 2
  assert 'give --image and --prompt' in capsys.readouterr().err
  assert hf_dir.read_added_tokens(checkpoint)['<ge_start>'] == 1010  # tokenizer travelled


def test_one_compilation_for_many_prompt_lengths(segmenter):
  prompts, pixels = _fixture_prompt('b1')
  base = prompts[0]
  image_end = base.index(1001) + 1  # keep <img> ... </img>, vary the text after it
  compiled = None
  for k in range(20):  # 258..277 tokens: one 320-token bucket
    segmenter.generate_ids([base[:image_end] + base[image_end:][:k + 1]], pixels)
    compiled = compiled or segmenter._generate._cache_size()  # pylint: disable=protected-access
  assert segmenter._generate._cache_size() == compiled  # pylint: disable=protected-access


def test_pick_codes_sampling_options():
  import jax  # pylint: disable=import-outside-toplevel
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
  from argenseg_jax.sampler import pick_codes  # pylint: disable=import-outside-toplevel
  logits = jnp.log(jnp.array([[0.05, 0.6, 0.3, 0.05]] * 256))
  greedy = pick_codes(logits, SamplerConfig(), jax.random.key(0))
  assert (greedy == 1).all()
  top1 = pick_codes(logits, SamplerConfig(temperature=1.0, top_k=1), jax.random.key(1))
  assert (top1 == 1).all()
  top2 = pick_codes(logits, SamplerConfig(temperature=1.0, top_k=2), jax.random.key(2))
  assert set(np.asarray(top2).tolist()) == {1, 2}
  nucleus = pick_codes(logits, SamplerConfig(temperature=1.0, top_p=0.5), jax.random.key(3))
  assert (nucleus == 1).all()  # 0.6 alone covers half the mass


def test_raster_order_gives_the_same_codes(checkpoint):
  """Within a scale every slot's input comes from earlier scales, so one token per pass
  and one scale per pass see the same keys: the codes must agree."""
  raster = Segmenter.load(checkpoint, sampler=SamplerConfig(max_new_tokens=3, raster=True))
  prompts, pixels = _fixture_prompt('b1')
  ref = np.load(golden_fixture('argenseg') / 'outputs.npz')
  out = raster.generate_ids(prompts, pixels)
  np.testing.assert_array_equal(np.asarray(out.codes)[:, 0], ref['b1_visual_ids_all'])
