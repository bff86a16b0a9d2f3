"""`Segmenter` and `argenseg segment` on the tiny config: 64-px tiles, 16 image tokens,
a byte tokenizer, an empty system prompt and a 64-px VQ-VAE (scales 1,2,3,4)."""

import shutil

import numpy as np
import pytest
from PIL import Image

from argenseg_jax import cli, pretrained
from argenseg_jax.checkpoints.torch_files import CheckpointError
from argenseg_jax.config_args import load_config
from argenseg_jax.image_io import ImageError
from argenseg_jax.sampler import SamplerConfig
from argenseg_jax.segmenter import Segmenter
from argenseg_jax.tokenizer import BYTE_TOKENIZER_FILE, scratch_tokenizer
from data_pipelines.synthetic_scenes import SyntheticScenes
from tests.scripted_model import scripted_argenseg


@pytest.fixture(scope='module')
def tokenizer():
  return scratch_tokenizer(load_config('argenseg:variant=tiny'))


@pytest.fixture(scope='module')
def checkpoint(tmp_path_factory, tokenizer):
  root = tmp_path_factory.mktemp('small_segmenter')
  # '\n' ends every prompt: answer `<ge_start>` (a mask that depends on the image and
  # the question) `<ge_end><|im_end|>`
  tid = tokenizer.token_id
  model, cfg = scripted_argenseg({tid('\n'): tid('<ge_start>'), tid('<ge_end>'): tid('<|im_end|>')})
  tokenizer.save(root)
  return pretrained.save_pretrained(model, cfg, root / 'ckpt', tokenizer_dir=root)


@pytest.fixture(scope='module')
def segmenter(checkpoint):
  return Segmenter.load(checkpoint, batch_size=2, sampler_config=SamplerConfig(max_new_tokens=4))


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


def test_rows_keep_their_own_image_question_and_mask(checkpoint, segmenter):
  """Five questions on images of five sizes, two per model call (the last call padded):
  each result equals that of the question asked alone."""
  rng = np.random.default_rng(0)
  sizes = [(64, 64), (30, 40), (70, 50), (33, 47), (20, 64)]
  images = [rng.integers(0, 256, (h, w, 3), np.uint8) for h, w in sizes]
  questions = ['the red circle', 'the blue square', 'all shapes', 'the left one', 'a circle']
  results = segmenter.segment(images, questions)
  alone = Segmenter.load(checkpoint, batch_size=1, sampler_config=SamplerConfig(max_new_tokens=4))
  for image, question, res in zip(images, questions, results, strict=True):
    [ref] = alone.segment([image], [question])
    assert res.token_ids == ref.token_ids and len(res.codes) == 1
    np.testing.assert_array_equal(res.codes[0], ref.codes[0])
    np.testing.assert_array_equal(res.mask_images[0], ref.mask_images[0])
    np.testing.assert_array_equal(res.masks[0], ref.masks[0])
    assert res.masks[0].shape == image.shape[:2]
  assert len({r.codes[0].tobytes() for r in results}) == len(results)  # each its own mask


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
