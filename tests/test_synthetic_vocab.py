"""The small model's word vocabulary (`data_pipelines/synthetic_vocab.py`), its
sentencepiece tokenizer and the query-first question it is trained with."""

import numpy as np
import pytest

from argenseg_jax import bundled, chat_template, example_spec
from argenseg_jax.config_args import load_config
from argenseg_jax.tokenizer import SentencePieceTokenizer, load_tokenizer, scratch_tokenizer
from data_pipelines import synthetic_vocab, train_pipeline
from data_pipelines.synthetic_scenes import SyntheticScenes


@pytest.fixture(scope='module')
def small():
  cfg = load_config('argenseg:variant=small')
  return cfg, scratch_tokenizer(cfg)


def test_the_shipped_vocabulary_is_reproduced():
  assert synthetic_vocab.train_vocabulary() == bundled.SYNTHETIC_VOCAB.read_bytes()


def test_every_word_of_the_grammar_is_one_token_and_other_text_round_trips(small):
  _, tok = small
  sentences = synthetic_vocab.grammar_sentences()
  for sentence in sentences:
    if sentence.replace(' ', '').isalpha():  # the expressions and role names
      assert len(tok.encode(sentence)) == len(sentence.split()), sentence
  assert len(tok.encode(sentences[-1])) == 7  # 'Sure', ',', 'the', ..., ':', ' .'
  for text in ('the purple star!', 'die rote Kugel  ', 'ein Baum 🌲\n', 'leftmost​circle'):
    assert tok.decode(tok.encode(text)) == text


def test_added_tokens_follow_the_vocabulary_and_are_saved(small, tmp_path):
  cfg, tok = small
  assert isinstance(tok, SentencePieceTokenizer)
  assert tok.token_id('<ge_start>') == cfg.tokens.gen_start_token_id
  assert cfg.llm.vocab_size == tok.vocab_size + cfg.vqvae.vocab_size
  tok.save(tmp_path)
  again = load_tokenizer(tmp_path)
  text = '<|im_start|>user\nthe small blue triangle.\n<img><IMG_CONTEXT></img><|im_end|>'
  assert again.encode(text) == tok.encode(text) and again.added == tok.added
  assert again.find_special('a <ge_start> b') == '<ge_start>'


def test_query_first_puts_the_expression_before_the_image(small):
  _, tok = small
  ask = chat_template.Referring(('the small blue triangle',))
  ids = chat_template.prompt_ids(tok, ask, tokens_per_tile=4, system='', style='query_first')
  text = tok.decode(ids)
  assert text.index('the small blue triangle.\n<img>') < text.index('<IMG_CONTEXT>')
  original = tok.decode(chat_template.prompt_ids(tok, ask, tokens_per_tile=4, system=''))
  assert original.index('<img>') < original.index('the small blue triangle')
  free = tok.decode(chat_template.prompt_ids(tok, 'Segment it.', tokens_per_tile=1, system='',
                                             style='query_first'))
  assert 'Segment it.\n<img><IMG_CONTEXT></img>' in free
  with pytest.raises(ValueError, match='question style'):
    chat_template.referring_question(['x'], 'image_last')


def test_training_examples_follow_the_models_style(small):
  cfg, tok = small
  spec = example_spec.spec_for(cfg, length_buckets=(232, 552), max_masks=3)
  assert spec.question_style == 'query_first'
  sample = SyntheticScenes(8, seed=5, size=128, questions=3)[0]
  example = train_pipeline.EncodeExample(tok, spec).map(sample)
  text = tok.decode(example['ids'])
  img = text.index('<img>')
  assert text.index(sample.dialogue[0]) < img < text.index(sample.dialogue[-1])
  assert text.count('<ge_start>') == len(sample.dialogue) == 3
  assert len(example['ids']) <= 232 + 2 * 160  # the buckets of configs/train_bundled.py
  bytes_cfg = load_config('argenseg:variant=small,vocabulary=bytes,question_style=internvl')
  original = example_spec.spec_for(bytes_cfg, length_buckets=(1024,), max_masks=3)
  ids = train_pipeline.EncodeExample(scratch_tokenizer(bytes_cfg), original).map(sample)['ids']
  assert len(ids) > len(example['ids']) and np.sum(ids == bytes_cfg.img_context_token_id) == 64
