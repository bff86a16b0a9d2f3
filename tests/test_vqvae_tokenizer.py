import numpy as np
import pytest

from argenseg_jax.vqvae_tokenizer import VQVAETokenizer


@pytest.fixture(scope='module')
def tok(small_model):
  return VQVAETokenizer(*small_model)


def test_encode_decode_var_input(tok):
  x = np.random.default_rng(0).uniform(-1, 1, (2, 64, 64, 3)).astype(np.float32)
  codes = tok.encode(x)
  assert [c.shape for c in codes] == [(2, 1), (2, 4), (2, 9), (2, 16)]
  assert all(0 <= c.min() and c.max() < tok.cfg.vocab_size for c in codes)
  assert tok.decode(codes).shape == (2, 64, 64, 3)
  assert tok.decode(codes, all_scales=True).shape == (4, 2, 64, 64, 3)
  assert tok.var_input(codes).shape == (2, 29, 32)


@pytest.mark.parametrize('shape,dtype,match', [
    ((64, 64, 3), np.float32, 'batched'),
    ((1, 64, 64, 1), np.float32, 'RGB'),
    ((1, 64, 64, 4), np.float32, 'RGB'),
    ((1, 72, 72, 3), np.float32, 'not a multiple of 16'),
    ((1, 128, 128, 3), np.float32, 'works at 64x64'),
    ((1, 64, 64, 3), np.uint8, 'float in'),
])
def test_bad_images(tok, shape, dtype, match):
  with pytest.raises(ValueError, match=match):
    tok.encode(np.zeros(shape, dtype))


def test_out_of_range_images(tok):
  with pytest.raises(ValueError, match=r'in \[-1, 1\]'):
    tok.encode(np.full((1, 64, 64, 3), 255.0, np.float32))
  with pytest.raises(ValueError, match='finite'):
    tok.encode(np.full((1, 64, 64, 3), np.nan, np.float32))


def test_bad_codes(tok):
  good = [np.zeros((1, pn * pn), np.int32) for pn in tok.patch_nums]
  with pytest.raises(ValueError, match='4 scales'):
    tok.decode(good[:3])
  with pytest.raises(ValueError, match=r'lie in \[0, 64\)'):
    tok.decode(good[:3] + [np.full((1, 16), 64)])
  with pytest.raises(ValueError, match=r'lie in \[0, 64\)'):
    tok.decode([np.full((1, 1), -1)] + good[1:])
  with pytest.raises(ValueError, match='shape'):
    tok.decode(good[:3] + [np.zeros((1, 15), np.int32)])
  with pytest.raises(ValueError, match='integers'):
    tok.var_input(good[:3] + [np.zeros((1, 16), np.float32)])
