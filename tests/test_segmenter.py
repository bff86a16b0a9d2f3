"""The segment API end to end, on the golden ARGenSeg (tiny, random; `conftest.py`)."""

import numpy as np
from PIL import Image

from argenseg_jax import cli
from argenseg_jax.checkpoints import hf_dir
from tests.conftest import golden_fixture
from tests.helpers import golden_prompts


def test_mask_images_and_segment(golden_segmenter):
  prompts, pixels = golden_prompts('b1')
  out = golden_segmenter.generate_ids(prompts, pixels)
  ref = np.load(golden_fixture('argenseg') / 'outputs.npz')
  decoded = golden_segmenter.decode_masks(np.asarray(out.codes)[:, 0])[0]
  assert np.mean(decoded != ref['b1_mask_uint8']) < 1e-3  # exact up to float truncation
  image = Image.new('RGB', (320, 200), (30, 120, 200))
  [result] = golden_segmenter.segment([image], ['Please segment the red circle.'])
  assert isinstance(result.text, str) and len(result.token_ids) <= 3
  assert all(m.shape == (200, 320) and m.dtype == bool for m in result.masks)


def test_cli_segment(golden_checkpoint, tmp_path, capsys):
  image = tmp_path / 'img.png'
  Image.new('RGB', (64, 48), (200, 10, 10)).save(image)
  assert cli.main(['segment', '--checkpoint', str(golden_checkpoint), '--image', str(image),
                   '--prompt', 'Please segment the red circle.', '--max-new-tokens', '4',
                   '--out', str(tmp_path / 'm.png')]) == 0
  assert "'Please segment the red circle.' ->" in capsys.readouterr().out
  assert cli.main(['segment', '--checkpoint', str(golden_checkpoint)]) == 2
  assert 'give --image and --prompt' in capsys.readouterr().err
  assert hf_dir.read_added_tokens(golden_checkpoint)['<ge_start>'] == 1010  # tokenizer travelled


def test_one_compilation_for_many_prompt_lengths(golden_segmenter):
  prompts, pixels = golden_prompts('b1')
  base = prompts[0]
  image_end = base.index(1001) + 1  # keep <img> ... </img>, vary the text after it
  compiled = None
  for k in range(20):  # 258..277 tokens: one 320-token bucket
    golden_segmenter.generate_ids([base[:image_end] + base[image_end:][:k + 1]], pixels)
    compiled = compiled or golden_segmenter._generate._cache_size()  # pylint: disable=protected-access
  assert golden_segmenter._generate._cache_size() == compiled  # pylint: disable=protected-access
