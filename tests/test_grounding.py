"""The image-dependence check (`argenseg_jax/evaluation/grounding.py`) on the tiny config."""

import functools

import numpy as np
import pytest

from argenseg_jax import pretrained
from argenseg_jax.checkpoints import params
from argenseg_jax.config_args import load_config
from argenseg_jax.evaluation import grounding
from argenseg_jax.models.argenseg import ARGenSeg
from argenseg_jax.tokenizer import ByteTokenizer

SPEC = 'synthetic:seed=3,n=4,size=64'


@pytest.fixture(scope='module')
def checkpoint(tmp_path_factory):
  root = tmp_path_factory.mktemp('grounding')
  cfg = load_config('argenseg:variant=tiny')
  ByteTokenizer.with_tokens(cfg.byte_tokens).save(root)
  return pretrained.save_pretrained(params.init(functools.partial(ARGenSeg, cfg)), cfg,
                                    root / 'ckpt', tokenizer_dir=root, params_format='safetensors')


def test_scale_accuracy_by_hand():
  levels = np.array([0, 1, 1])                  # scales 1 and sqrt(2): 3 slots per mask
  is_visual = np.array([[0, 1, 1, 1, 0, 1, 1, 1]], bool)   # two masks in one row
  labels = np.array([[0, 5, 6, 7, 0, 5, 6, 7]])
  pred = np.array([[9, 5, 0, 7, 9, 0, 6, 0]])   # level 0: 1 of 2; level 1: 2 of 4
  np.testing.assert_allclose(grounding.scale_accuracy(pred, labels, is_visual, levels), [0.5, 0.5])


@pytest.mark.slow  # ~40 s: a tiny ARGenSeg is initialised and compiled
def test_swapping_images_changes_a_model_that_reads_them(checkpoint):
  model, batch = grounding.load_batch(checkpoint, SPEC, 4)
  dep = grounding.image_dependence(model, batch)
  assert len(dep.accuracy_own) == len(model.patch_nums) == len(dep.accuracy_swapped)
  assert all(0 <= a <= 1 for a in dep.accuracy_own + dep.accuracy_swapped)
  assert dep.loss_own != dep.loss_swapped       # random weights do depend on the pixels
  same = dict(batch, pixels=np.repeat(batch['pixels'][:1], 4, axis=0))
  dep_same = grounding.image_dependence(model, same)
  assert dep_same.loss_own == dep_same.loss_swapped
  assert dep_same.accuracy_own == dep_same.accuracy_swapped


def test_command_line_names_a_short_dataset_before_loading_the_model(tmp_path):
  with pytest.raises(ValueError, match='fewer than --samples 8'):
    grounding.main(['--checkpoint', str(tmp_path / 'not_loaded'), '--data', SPEC,
                    '--samples', '8'])
