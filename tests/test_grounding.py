"""The image-dependence check (`argenseg_jax/evaluation/grounding.py`) on the bundled small
ARGenSeg, which reads its image on one-object scenes (held-out seed 2027)."""

import numpy as np
import pytest

from argenseg_jax import bundled, cli
from argenseg_jax.cli import evaluate
from argenseg_jax.evaluation import grounding
from argenseg_jax.tokenizer import load_tokenizer

SPEC = 'synthetic:seed=2027,n=4,objects=1,templates=colour_shape,no_target_fraction=0'


@pytest.fixture(scope='module')
def small():
  """`(model, batch)`: the bundled small ARGenSeg and four held-out one-object scenes."""
  model, batch, _ = evaluate.load_batches(str(bundled.ARGENSEG_SMALL), SPEC, 4)
  return model, batch


def test_scale_accuracy_by_hand():
  levels = np.array([0, 1, 1])                  # scales 1 and sqrt(2): 3 slots per mask
  is_visual = np.array([[0, 1, 1, 1, 0, 1, 1, 1]], bool)   # two masks in one row
  labels = np.array([[0, 5, 6, 7, 0, 5, 6, 7]])
  pred = np.array([[9, 5, 0, 7, 9, 0, 6, 0]])   # level 0: 1 of 2; level 1: 2 of 4
  np.testing.assert_allclose(grounding.scale_accuracy(pred, labels, is_visual, levels), [0.5, 0.5])


def test_a_model_that_reads_its_image_gets_worse_with_the_next_rows_image(small):
  model, batch = small
  dep = grounding.image_dependence(model, batch)
  assert len(dep.accuracy_own) == len(model.patch_nums) == len(dep.accuracy_swapped)
  assert all(0 <= a <= 1 for a in dep.accuracy_own + dep.accuracy_swapped)
  assert dep.loss_swapped > dep.loss_own + 1.0  # about 3.5 against 0.5
  assert dep.accuracy_swapped[-1] < dep.accuracy_own[-1] - 0.1  # finest scale: 0.56, 0.78
  rolled = dict(batch, pixels=np.roll(batch['pixels'], -1, axis=0))
  dep_rolled = grounding.image_dependence(model, rolled)
  assert (dep_rolled.loss_own, dep_rolled.accuracy_own) == (dep.loss_swapped,
                                                            dep.accuracy_swapped)


def test_equal_images_give_equal_runs(small):
  model, batch = small
  same = dict(batch, pixels=np.repeat(batch['pixels'][:1], 4, axis=0))
  dep = grounding.image_dependence(model, same)
  assert dep.loss_own == dep.loss_swapped and dep.accuracy_own == dep.accuracy_swapped


def test_command_line_names_a_short_dataset_before_loading_the_model(tmp_path, capsys):
  assert cli.main(['grounding', '--checkpoint', str(tmp_path / 'not_loaded'), '--data', SPEC,
                   '--samples', '8']) == 2
  assert 'fewer than --samples 8' in capsys.readouterr().err


def test_shuffled_expressions_keep_the_images_and_targets():
  model, batch, shuffled = evaluate.load_batches(str(bundled.ARGENSEG_SMALL), SPEC, 4)
  for key in ('pixels', 'masks', 'mask_flags'):
    assert np.array_equal(batch[key], shuffled[key]), key
  tokenizer = load_tokenizer(bundled.ARGENSEG_SMALL)
  asked = [[tokenizer.decode(r[m]).split('instructions: ')[1].split('.;')[0]
            for r, m in zip(b['ids'], b['token_mask'])] for b in (batch, shuffled)]
  assert len(set(asked[0])) > 1 and asked[1] == asked[0][1:] + asked[0][:1]
  dep = grounding.image_dependence(model, batch, shuffled)
  assert dep.loss_shuffled is not None and len(dep.accuracy_shuffled) == len(model.patch_nums)
  same = grounding.image_dependence(model, batch, batch)
  assert same.loss_shuffled == same.loss_own
