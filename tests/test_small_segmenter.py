"""`Segmenter` and `argenseg segment` on the tiny config: 64-px tiles, 16 image tokens,
a byte tokenizer, an empty system prompt and a 64-px VQ-VAE (scales 1,2,3,4)."""

import functools
import shutil

import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from argenseg_jax import cli, pretrained
from argenseg_jax.checkpoints import params
from argenseg_jax.checkpoints.torch_files import CheckpointError
from argenseg_jax.config_args import load_config
from argenseg_jax.image_io import ImageError
from argenseg_jax.models.argenseg import ARGenSeg
from argenseg_jax.sampler import SamplerConfig
from argenseg_jax.segmenter import Segmenter
from argenseg_jax.tokenizer import BYTE_TOKENIZER_FILE, ByteTokenizer
from data_pipelines.synthetic_scenes import SyntheticScenes


def _answer_with_one_mask(model: ARGenSeg, tokenizer: ByteTokenizer) -> ARGenSeg:
  """Random weights edited so that greedy decoding answers `<ge_start>` (a mask of random
  codes) `<ge_end><|im_end|>`: with the attention and MLP outputs zeroed, the final
  hidden state is the normalised embedding of the token fed, so output columns set to
  scaled embeddings choose the next token ('\\n' ending the prompt -> `<ge_start>`,
  `<ge_end>` -> `<|im_end|>`)."""
  lm = model.language_model
  for layer in lm.layers:
    layer.attention.wo[...] = jnp.zeros_like(layer.attention.wo[...])
    layer.feed_forward.w2[...] = jnp.zeros_like(layer.feed_forward.w2[...])
  emb, tid = lm.tok_embeddings.embedding[...], tokenizer.token_id
  lm.output[...] = (lm.output[...]
                    .at[:, tid('<ge_start>')].set(100 * emb[tid('\n')])
                    .at[:, tid('<|im_end|>')].set(100 * emb[tid('<ge_end>')]))
  return model


@pytest.fixture(scope='module')
def tokenizer():
  return ByteTokenizer.with_tokens(load_config('argenseg:variant=tiny').byte_tokens)


@pytest.fixture(scope='module')
def checkpoint(tmp_path_factory, tokenizer):
  root = tmp_path_factory.mktemp('small_segmenter')
  cfg = load_config('argenseg:variant=tiny')
  model = _answer_with_one_mask(params.init(functools.partial(ARGenSeg, cfg)), tokenizer)
  tokenizer.save(root)
  return pretrained.save_pretrained(model, cfg, root / 'ckpt', tokenizer_dir=root)


@pytest.fixture(scope='module')
def segmenter(checkpoint):
  return Segmenter.load(checkpoint, batch_size=2, sampler=SamplerConfig(max_new_tokens=4))


@pytest.fixture(scope='module')
def scene():
  return SyntheticScenes(4, seed=0, size=64)[0]


def test_one_compiled_program_for_any_number_of_questions(segmenter, tokenizer, scene):
  spec = segmenter.spec
  assert (spec.image_size, spec.image_tokens, spec.system_prompt) == (64, 16, '')
  image = scene.image
  [one] = segmenter.segment([Image.fromarray(image)], ['a circle'])
  wide = np.zeros((40, 64, 3), np.uint8)
  two = segmenter.segment([image, wide], ['the red circle', 'the blue square'])
  three = segmenter.segment([image] * 3, ['the red circle'] * 3)  # a full batch, then a short one
  assert segmenter._generate._cache_size() == 1  # pylint: disable=protected-access
  assert segmenter.vqvae._jitted._cache_size() == 1  # pylint: disable=protected-access
  ge_end = tokenizer.token_id('<ge_end>')  # the sampler records <ge_start> as <ge_end>
  results = [one] + two + three
  for res, size in zip(results, [(64, 64), (64, 64), (40, 64)] + [(64, 64)] * 3, strict=True):
    assert res.token_ids == [ge_end, tokenizer.token_id('<|im_end|>')] and res.text == ''
    assert len(res.masks) == len(res.codes) == res.token_ids.count(ge_end) == 1
    assert res.masks[0].shape == size and res.masks[0].dtype == bool
    assert res.mask_images[0].shape == (64, 64, 3) and res.codes[0].shape == (30,)
  assert segmenter.segment([], []) == []


def test_cli_segment(checkpoint, scene, tmp_path, capsys):
  image = tmp_path / 'img.png'
  Image.fromarray(scene.image).save(image)
  assert cli.main(['segment', '--checkpoint', str(checkpoint), '--image', str(image),
                   '--prompt', 'the red circle', '--max-new-tokens', '4',
                   '--out', str(tmp_path / 'm.png'), '--overlay', str(tmp_path / 'o.png')]) == 0
  assert f"{image}: 'the red circle' -> '' (1 mask(s))" in capsys.readouterr().out
  assert Image.open(tmp_path / 'm.png').size == Image.open(tmp_path / 'o.png').size == (64, 64)


def test_errors_name_the_problem(checkpoint, segmenter, tmp_path, capsys):
  no_tokenizer = shutil.copytree(checkpoint, tmp_path / 'no_tokenizer',
                                 ignore=shutil.ignore_patterns(BYTE_TOKENIZER_FILE))
  with pytest.raises(CheckpointError, match='tokenizer'):
    Segmenter.load(no_tokenizer)
  bad = tmp_path / 'bad.png'
  bad.write_bytes(b'not a png')
  assert cli.main(['segment', '--checkpoint', str(checkpoint), '--image', str(bad),
                   '--prompt', 'the red circle']) == 2
  assert f'{bad} is not a readable image' in capsys.readouterr().err
  with pytest.raises(ImageError, match=str(bad)):
    segmenter.segment([str(bad)], ['the red circle'])
