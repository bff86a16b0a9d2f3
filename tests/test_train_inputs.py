"""Training inputs on tiny hand-computed cases: ids and labels of an encoded example,
its masks and flags, and the padded batch (bucket, padding, token mask, order)."""

import numpy as np
import pytest
from PIL import Image

from argenseg_jax import chat_template, example_spec
from argenseg_jax.config_args import load_config
from argenseg_jax.image_transforms import normalize_tile
from argenseg_jax.mask_transforms import mask_to_vae_input
from argenseg_jax.ref_sample import RefSample
from argenseg_jax.tokenizer import scratch_tokenizer
from data_pipelines import train_pipeline

TOK = scratch_tokenizer(load_config('argenseg:variant=tiny'))
BOS, START, END = TOK.bos_id, TOK.token_id('<|im_start|>'), TOK.token_id('<|im_end|>')
IMAGE = [TOK.token_id(t) for t in ('<img>', '<IMG_CONTEXT>', '<IMG_CONTEXT>', '</img>')]
GS, MC, GE = (TOK.token_id(t) for t in ('<ge_start>', '<MASK_CONTEXT>', '<ge_end>'))
IGNORE = chat_template.IGNORE
# 2 image tokens per tile, `<mask>` -> <ge_start> + 2 x <MASK_CONTEXT> + <ge_end>
SPEC = example_spec.ExampleSpec(image_size=16, image_tokens=2, mask_resolution=16,
                                  mask_tokens=3, max_masks=2, length_buckets=(64, 128, 256),
                                  pad_id=2, system_prompt='')
MASK = [GS, MC, MC, GE]
MASK_LABELS = [GS, MC, MC, MC]  # the <ge_end> slot is the last visual target
HEADER = 11                     # <|im_start|> + 'assistant\n'


def _b(text: str) -> list[int]:
  """Byte-level ids of plain text (byte b is id 3 + b)."""
  return [3 + c for c in text.encode()]


def _turn(role: str, body: list[int]) -> list[int]:
  return [START, *_b(role + '\n'), *body, END, *_b('\n')]


def _ignored(ids: list[int]) -> list[int]:
  return [IGNORE] * len(ids)


def _answer_labels(body_labels: list[int]) -> list[int]:
  """Labels of an assistant turn: header and final newline ignored, `<|im_end|>` trained."""
  return [IGNORE] * HEADER + body_labels + [END, IGNORE]


PROMPT = [BOS, *_turn('system', [])]


def test_training_example_ids_and_labels():
  ex = chat_template.training_example(
      TOK, [{'from': 'human', 'value': '<image>\nhi'}, {'from': 'gpt', 'value': 'A<mask>.'}],
      tokens_per_tile=2, system='', mask_tokens=3)
  question = PROMPT + _turn('user', IMAGE + _b('\nhi'))
  assert ex.ids.tolist() == question + _turn('assistant', _b('A') + MASK + _b('.'))
  assert ex.labels.tolist() == _ignored(question) + _answer_labels(_b('A') + MASK_LABELS + _b('.'))
  assert ex.num_masks == 1


def _two_masks_sample(image, masks):
  """A two-round conversation, one `<mask>` per answer; the second question untrained."""
  return RefSample(image, [], masks, 'a:1', conversation=[
      {'from': 'human', 'value': '<image>\nx'}, {'from': 'gpt', 'value': '<mask>'},
      {'from': 'human', 'value': 'y'}, {'from': 'gpt', 'value': '<mask>'}])


TWO_IDS = (PROMPT + _turn('user', IMAGE + _b('\nx')) + _turn('assistant', MASK)
           + _turn('user', _b('y')) + _turn('assistant', MASK))
TWO_LABELS = (_ignored(PROMPT + _turn('user', IMAGE + _b('\nx'))) + _answer_labels(MASK_LABELS)
              + _ignored(_turn('user', _b('y'))) + _answer_labels(MASK_LABELS))
NONE_IDS = PROMPT + _turn('user', IMAGE + _b('\nz')) + _turn('assistant', _b('no'))
NONE_LABELS = _ignored(PROMPT + _turn('user', IMAGE + _b('\nz'))) + _answer_labels(_b('no'))


def test_encoded_examples_padded_into_a_batch():
  rng = np.random.default_rng(0)
  images = [rng.integers(0, 256, (4, 6, 3), dtype=np.uint8),
            rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)]
  left, top = np.zeros((8, 8), bool), np.zeros((8, 8), bool)
  left[:, :3], top[:2] = True, True
  none = RefSample(images[0], [], [], 'a:2', conversation=[
      {'from': 'human', 'value': '<image>\nz'}, {'from': 'gpt', 'value': 'no'}])
  encode = train_pipeline.EncodeExample(TOK, SPEC)
  examples = [encode.map(none), encode.map(_two_masks_sample(images[1], [left, top]))]
  assert [len(e['ids']) for e in examples] == [len(NONE_IDS), len(TWO_IDS)] == [40, 68]

  batch = train_pipeline.pad_batch(examples, SPEC)
  assert sorted(batch) == sorted(train_pipeline.BATCH_KEYS)
  assert batch['ids'].shape == batch['labels'].shape == batch['token_mask'].shape == (2, 128)
  assert batch['ids'].tolist() == [NONE_IDS + [2] * 88, TWO_IDS + [2] * 60]
  assert batch['labels'].tolist() == [NONE_LABELS + [IGNORE] * 88, TWO_LABELS + [IGNORE] * 60]
  assert batch['token_mask'].tolist() == [[True] * 40 + [False] * 88,
                                          [True] * 68 + [False] * 60]
  for got, image in zip(batch['pixels'], images):
    np.testing.assert_array_equal(got, normalize_tile(Image.fromarray(image), 16))
  assert batch['image_flags'].tolist() == [1, 1]
  # example-major mask slots: the mask-less example's two dummies, then left, top
  assert batch['mask_flags'].tolist() == [0, 0, 1, 1]
  assert batch['masks'].shape == (4, 16, 16, 3)
  np.testing.assert_array_equal(batch['masks'][:2], np.ones((2, 16, 16, 3), np.float32))
  for got, mask in zip(batch['masks'][2:], (left, top)):
    np.testing.assert_array_equal(got, mask_to_vae_input(mask.astype(np.uint8) * 255, 16))


def test_bucket_choice():
  buckets = (64, 128, 256)
  assert [train_pipeline.bucket_length(n, buckets) for n in (1, 64, 65, 128, 129, 256)] == [
      64, 64, 128, 128, 256, 256]
  with pytest.raises(ValueError, match='257 tokens exceed the largest length bucket 256'):
    train_pipeline.bucket_length(257, buckets)
  short, long = _example(40), _example(70)
  assert train_pipeline.pad_batch([short], SPEC)['ids'].shape == (1, 64)
  for examples in ([short, long], [long, short]):  # the longest example decides
    assert train_pipeline.pad_batch(examples, SPEC)['ids'].shape == (2, 128)
  # several processes pad to the largest bucket only
  assert train_pipeline.pad_batch([short], SPEC, buckets=(256,))['ids'].shape == (1, 256)


def _example(length: int) -> dict[str, np.ndarray]:
  return {'ids': np.arange(length, dtype=np.int32), 'labels': np.zeros(length, np.int32),
          'pixels': np.zeros((16, 16, 3), np.float32), 'image_flag': np.int32(1),
          'masks': np.ones((2, 16, 16, 3), np.float32), 'mask_flags': np.zeros(2, np.int32)}
