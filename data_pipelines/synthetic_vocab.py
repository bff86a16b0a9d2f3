"""The word vocabulary of the synthetic grammar: a sentencepiece BPE model whose pieces
hold every word of `synthetic_scenes` and of the referring template as one token, and
falls back to UTF-8 bytes for any other text.

  python -m data_pipelines.synthetic_vocab argenseg_jax/assets/synthetic_vocab.model

writes the model that the small ARGenSeg variant reads (`configs/argenseg.py`). A
byte-level model spells "the small blue triangle" in 23 tokens, which the first layers of
a 4-layer decoder must assemble into words before anything can be matched against the
image; here it is 4 tokens. Training is deterministic: the same corpus gives the same
file.
"""

import io
import sys

import sentencepiece as spm

from argenseg_jax import chat_template, user_input
from data_pipelines import synthetic_scenes as scenes

VOCAB_SIZE = 400  # 3 control pieces, 256 bytes, the characters and merges of the corpus
REPEATS = 20      # every sentence often enough for BPE to merge each word whole


def grammar_sentences() -> list[str]:
  """Every expression the grammar can produce, and the template's words."""
  texts = set()
  for c in scenes.COLOURS:
    texts.add(f'all {c} shapes')
    texts.update(f'the {c} shape {where}' for where in scenes.WHERE)
    for s in scenes.SHAPES:
      texts.add(f'the {c} {s}')
      texts.update(f'the {z} {c} {s}' for z in scenes.SIZES)
  for s in scenes.SHAPES:
    texts.update(f'the {s} {where}' for where in scenes.WHERE)
    texts.update(f'the {most} {s}' for most in scenes.MOST)
  return sorted(texts) + ['system', 'user', 'assistant', chat_template.REFERRING_ANSWER.replace(
      chat_template.MASK, '')]


def train_vocabulary() -> bytes:
  """The serialized sentencepiece model."""
  out = io.BytesIO()
  spm.SentencePieceTrainer.train(
      sentence_iterator=iter(grammar_sentences() * REPEATS), model_writer=out,
      model_type='bpe', vocab_size=VOCAB_SIZE, byte_fallback=True, character_coverage=1.0,
      normalization_rule_name='identity', add_dummy_prefix=False,
      remove_extra_whitespaces=False, num_threads=1, minloglevel=2)
  return out.getvalue()


def main(argv) -> int:
  if len(argv) != 2:
    print(__doc__.strip().splitlines()[3].strip(), file=sys.stderr)
    return 2
  user_input.path(argv[1]).write_bytes(train_vocabulary())
  return 0


if __name__ == '__main__':
  sys.exit(main(sys.argv))
