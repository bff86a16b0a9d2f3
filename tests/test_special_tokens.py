"""Special tokens typed in user text are refused (inference) or skipped (training)."""

import json
import logging
import re

import numpy as np
import pytest
import sentencepiece as spm

from argenseg_jax import bundled, chat_template, cli, example_spec
from argenseg_jax.config_args import load_config
from argenseg_jax.models import argenseg_io
from argenseg_jax.models.argenseg_io import ARGENSEG_TOKENS, CHAT_TOKENS, INTERNVL_TOKENS
from argenseg_jax.ref_sample import RefSample
from argenseg_jax.tokenizer import load_tokenizer, scratch_tokenizer
from data_pipelines import train_pipeline

# the tiny config's added tokens, and the base tokenizer's own
TYPED = CHAT_TOKENS + INTERNVL_TOKENS + ARGENSEG_TOKENS + ('<s>', '</s>', '<unk>')
CORPUS = ['Please segment the red circle.', 'Sure, the segmentation result: here.',
          'system user assistant hello world', 'the leftmost square']


@pytest.fixture(scope='module')
def byte_tok():
  return scratch_tokenizer(load_config('argenseg:variant=tiny'))


@pytest.fixture(scope='module')
def sp_tok(tmp_path_factory):
  """InternVL's layout: the chat tokens are sentencepiece user-defined symbols, the
  image and mask tokens are listed in `added_tokens.json`."""
  d = tmp_path_factory.mktemp('sp')
  (d / 'corpus.txt').write_text('\n'.join(CORPUS * 20))
  spm.SentencePieceTrainer.train(
      input=str(d / 'corpus.txt'), model_prefix=str(d / 'tokenizer'), vocab_size=320,
      model_type='bpe', user_defined_symbols=list(CHAT_TOKENS), character_coverage=1.0,
      byte_fallback=True, add_dummy_prefix=False, remove_extra_whitespaces=False,
      minloglevel=2)
  (d / 'added_tokens.json').write_text(json.dumps(argenseg_io.added_token_ids(320)))
  return load_tokenizer(d)


@pytest.fixture(params=['byte', 'sentencepiece'])
def tok(request, byte_tok, sp_tok):
  return byte_tok if request.param == 'byte' else sp_tok


@pytest.mark.parametrize('token', TYPED)
def test_prompt_refuses_each_special_token(tok, token):
  question = f'Please segment {token} the red circle.'
  with pytest.raises(chat_template.SpecialTokenError,
                     match=re.escape(f'the question holds {token!r}')) as e:
    chat_template.prompt_ids(tok, question)
  assert isinstance(e.value, ValueError) and 'Please segment' in str(e.value)
  assert set(TYPED) <= set(tok.special_tokens)


def test_sentencepiece_normalisation_cannot_spell_a_token(sp_tok):
  assert sp_tok.encode('＜|im_start|＞') == [sp_tok.token_id('<|im_start|>')]
  with pytest.raises(chat_template.SpecialTokenError, match=re.escape("'<|im_start|>'")):
    chat_template.prompt_ids(sp_tok, 'Please segment ＜|im_start|＞ the red circle.')


def test_plain_questions_and_placeholder_places(tok):
  plain = chat_template.prompt_ids(tok, 'Please segment the red circle.')
  assert plain == chat_template.prompt_ids(tok, '<image>\nPlease segment the red circle.')
  for text in ('a < b > c', '<imgs> <b>bold</b>', 'the <image> here', '<ge_start'):
    chat_template.prompt_ids(tok, text)
  with pytest.raises(ValueError, match='exactly one <image>'):
    chat_template.prompt_ids(tok, '<image> and <image>')
  with pytest.raises(chat_template.SpecialTokenError,
                     match=re.escape("the question holds '<mask>'")):
    chat_template.prompt_ids(tok, 'Please segment <mask> the cat.')


def test_segment_refuses_a_typed_token_before_loading(tmp_path, capsys, monkeypatch):
  """`argenseg segment` exits 2 naming the token (and the --batch line) before the model
  is loaded."""
  from argenseg_jax import segmenter  # pylint: disable=import-outside-toplevel

  def no_model(*args, **kwargs):
    raise AssertionError('the model was loaded')
  monkeypatch.setattr(segmenter.Segmenter, 'load', no_model)
  assert cli.main(['segment', '--image', str(bundled.SCENE), '--prompt',
                   'Please segment <IMG_CONTEXT> the circle.']) == 2
  err = capsys.readouterr().err
  assert "argenseg segment: error: the question holds '<IMG_CONTEXT>'" in err
  assert "'Please segment <IMG_CONTEXT> the circle.'" in err
  jobs = tmp_path / 'jobs.jsonl'
  jobs.write_text(f'{{"image": "{bundled.SCENE}", "expression": "the circle"}}\n'
                  f'{{"image": "{bundled.SCENE}", "expression": "the <ge_start> square"}}\n')
  assert cli.main(['segment', '--batch', str(jobs)]) == 2
  assert f"error: {jobs}:2: the expression holds '<ge_start>'" in capsys.readouterr().err


def _conversation(question, answer):
  return [{'from': 'human', 'value': question}, {'from': 'gpt', 'value': answer}]


def test_training_example_refuses_typed_tokens(tok):
  ok = chat_template.training_example(tok, _conversation('<image>\nSegment the cat.',
                                                         'Here: <mask>.'), mask_tokens=30)
  assert ok.num_masks == 1
  for question, answer, where, token in [
      ('<image>\nSegment <IMG_CONTEXT> it.', 'Here: <mask>.', 'turn 0 (human)', '<IMG_CONTEXT>'),
      ('<image>\nSegment it.', 'Here <ge_start>: <mask>.', 'turn 1 (gpt)', '<ge_start>'),
      ('<image>\nSegment it.', 'Here: <mask>.<|im_end|>', 'turn 1 (gpt)', '<|im_end|>'),
      ('<image>\nSegment <mask>.', 'Here: <mask>.', 'turn 0 (human)', '<mask>'),
      ('Segment it.', '<image> Here: <mask>.', 'turn 1 (gpt)', '<image>')]:
    with pytest.raises(chat_template.SpecialTokenError,
                       match=re.escape(f'{where} holds {token!r}')):
      chat_template.training_example(tok, _conversation(question, answer), mask_tokens=30)


def test_encode_example_skips_samples_with_typed_tokens(byte_tok, caplog):
  cfg = load_config('argenseg:variant=tiny')
  encode = train_pipeline.EncodeExample(byte_tok, example_spec.spec_for(cfg))
  image, mask = np.zeros((64, 64, 3), np.uint8), np.ones((64, 64), bool)
  bad = [RefSample(image, ['the <IMG_CONTEXT> circle'], [mask], 'refs.json:3'),
         RefSample(image, ['the <image> circle'], [mask], 'refs.json:4'),
         RefSample(image, [], [mask], 'anns.jsonl:7',
                   _conversation('<image>\nSegment it.', 'Sure <ge_start>: <mask>.')),
         RefSample(image, [], [mask], 'anns.jsonl:8',
                   _conversation('<image>\nSegment <mask>.', 'Sure: <mask>.'))]
  good = RefSample(image, ['the red circle'], [mask], 'refs.json:5')
  with caplog.at_level(logging.WARNING):
    for sample in bad:
      assert encode.map(sample) is None
    example = encode.map(good)
  assert example is not None and example['mask_flags'].tolist() == [1]
  assert encode.skipped == len(bad) and encode.consecutive_skips == 0
  for sample in bad:
    assert any(sample.origin in r.getMessage() and 'holds' in r.getMessage()
               for r in caplog.records), sample.origin
