"""The tokenizer and the internvl2_5 template, on a sentencepiece model trained here."""

import json

import numpy as np
import pytest
import sentencepiece as spm

from argenseg_jax import chat_template
from argenseg_jax.checkpoints.torch_files import CheckpointError
from argenseg_jax.tokenizer import ByteTokenizer, load_tokenizer

CORPUS = ['Sure, the segmentation result is here.', 'Please segment the red circle.',
          'Given the following instructions: the big blue square; please perform '
          'referring segmentation on this image.', 'system user assistant hello world',
          'the leftmost square', 'all yellow shapes', 'the triangle on the left']
SPECIALS = ['<img>', '</img>', '<IMG_CONTEXT>', '<quad>', '</quad>', '<ref>', '</ref>',
            '<box>', '</box>', '<mask>', '<ge_start>', '<ge_end>', '<MASK_CONTEXT>']


@pytest.fixture(scope='module')
def tok_dir(tmp_path_factory):
  d = tmp_path_factory.mktemp('tok')
  (d / 'corpus.txt').write_text('\n'.join(CORPUS * 20))
  spm.SentencePieceTrainer.train(
      input=str(d / 'corpus.txt'), model_prefix=str(d / 'tokenizer'), vocab_size=400,
      model_type='bpe', user_defined_symbols=['<|im_start|>', '<|im_end|>'],
      character_coverage=1.0, byte_fallback=True, add_dummy_prefix=False,
      remove_extra_whitespaces=False, minloglevel=2)  # like InternLM2's tokenizer
  base = spm.SentencePieceProcessor(model_file=str(d / 'tokenizer.model')).get_piece_size()
  (d / 'added_tokens.json').write_text(json.dumps({t: base + i for i, t in enumerate(SPECIALS)}))
  return d


@pytest.fixture(scope='module')
def tok(tok_dir):
  return load_tokenizer(tok_dir)


def test_special_tokens_split_and_round_trip(tok):
  text = '<img><IMG_CONTEXT><IMG_CONTEXT></img> Please segment the red circle.<ge_start>'
  ids = tok.encode(text)
  assert ids[:4] == [tok.token_id(t) for t in ('<img>', '<IMG_CONTEXT>', '<IMG_CONTEXT>', '</img>')]
  assert ids[-1] == tok.token_id('<ge_start>')
  assert tok.decode(ids) == text
  assert tok.decode(ids, skip_special=True) == ' Please segment the red circle.'
  assert tok.encode('hello', add_bos=True)[0] == tok.bos_id
  assert tok.vocab_size == 400 + len(SPECIALS)


def test_prompt_layout_and_limits(tok):
  ids = chat_template.prompt_ids(tok, 'Please segment the red circle.', num_tiles=2)
  ctx = tok.token_id('<IMG_CONTEXT>')
  assert ids[0] == tok.bos_id and ids.count(ctx) == 512
  assert ids[-len(tok.encode('<|im_start|>assistant\n')):] == tok.encode('<|im_start|>assistant\n')
  assert tok.decode(ids).count('<|im_start|>') == 3
  with pytest.raises(ValueError, match='exactly one <image>'):
    chat_template.prompt_ids(tok, '<image> and <image>')
  with pytest.raises(ValueError, match=r'is \d+ tokens long, over the limit of 100'):
    chat_template.prompt_ids(tok, 'hello', max_length=100)


def test_training_example_labels(tok):
  conv = [{'from': 'human', 'value': '<image>\n Please segment the red circle.'},
          {'from': 'gpt', 'value': 'Sure, the segmentation result: <mask>.'}]
  ex = chat_template.training_example(tok, conv, mask_tokens=680)
  ids, labels = ex.ids, ex.labels
  start, end = tok.token_id('<ge_start>'), tok.token_id('<ge_end>')
  ctx = tok.token_id('<MASK_CONTEXT>')
  q = int(np.flatnonzero(ids == start)[0])
  assert ex.num_masks == 1 and (ids == ctx).sum() == 679 and ids[q + 680] == end
  assert labels[q] == start                              # <ge_start> is a text target
  assert (labels[q + 1:q + 681] == ctx).all()            # 679 slots + <ge_end> -> visual
  assert labels[-1] == -100                              # the final '\n'
  assert labels[-2] == tok.token_id('<|im_end|>')        # <|im_end|> is a target
  header = len(tok.encode('<|im_start|>assistant\n'))
  answer_start = int(np.flatnonzero(labels != -100)[0])
  assert (labels[:answer_start] == -100).all()
  assert ids[answer_start - header:answer_start].tolist() == tok.encode('<|im_start|>assistant\n')
  assert (ids == tok.token_id('<IMG_CONTEXT>')).sum() == 256
  with pytest.raises(ValueError, match='over the limit'):
    chat_template.training_example(tok, conv, max_length=500)


def test_missing_tokenizer_files(tmp_path):
  with pytest.raises(CheckpointError, match='no tokenizer.model'):
    load_tokenizer(tmp_path)


def test_empty_prompt_is_refused(tok):
  for empty in ('', '   ', '<image>\n'):
    with pytest.raises(ValueError, match='prompt is empty'):
      chat_template.prompt_ids(tok, empty)


def test_byte_tokenizer_round_trip_and_saved_file(tmp_path):
  tok = ByteTokenizer.with_tokens(['<|im_start|>', '<|im_end|>', '<image>', '<mask>'])
  text = '<|im_start|>user\nthé red circle<|im_end|>'
  ids = tok.encode(text, add_bos=True)
  assert ids[:2] == [tok.bos_id, tok.token_id('<|im_start|>')]
  assert ids[2] == 3 + ord('u') and tok.token_id('u') == ids[2]
  assert tok.decode(ids) == text
  assert tok.decode(ids + [9999], skip_special=True) == 'user\nthé red circle'
  assert tok.vocab_size == 3 + 256 + 4
  tok.save(tmp_path)
  again = load_tokenizer(tmp_path)
  assert isinstance(again, ByteTokenizer) and again.encode(text) == tok.encode(text)
  with pytest.raises(ValueError, match='>= 259'):
    ByteTokenizer({'<x>': 5})
