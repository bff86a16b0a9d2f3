"""InternVL2.5's `internvl2_5` conversation template with ARGenSeg's mask expansion.

  <|im_start|>system\\n{SYS}<|im_end|>\\n<|im_start|>user\\n{USER}<|im_end|>\\n
  <|im_start|>assistant\\n{ANSWER}<|im_end|>\\n

`<image>` becomes `<img>` + 256 `<IMG_CONTEXT>` per tile + `</img>`; in answers, `<mask>`
becomes `<ge_start>` + 679 `<MASK_CONTEXT>` + `<ge_end>`. Training labels follow the
original: prompt turns -100, the assistant header and the trailing newline -100, and the
`<ge_end>` label replaced by `<MASK_CONTEXT>` (the model's 680th visual target).

User text may not spell a special token of the tokenizer (`<IMG_CONTEXT>`, `<ge_start>`,
`<|im_end|>`, ...): it would become that token, shifting the image embeddings or the
turns. `check_text` refuses it with `SpecialTokenError` before the text enters the
template; the only markup allowed is `<image>` in questions and `<mask>` in answers.
"""

import dataclasses
import re

import numpy as np

from argenseg_jax import user_input
from argenseg_jax.tokenizer import Tokenizer

SYSTEM_PROMPT = ('你是书生·万象，英文名是InternVL，是由上海人工智能实验室、清华大学及多家合作'
                 '单位联合开发的多模态大语言模型。')
IMAGE, MASK = '<image>', '<mask>'
IGNORE = -100
REFERRING_ANSWER = 'Sure, the segmentation result: <mask>.'
PLACES = {IMAGE: 'questions', MASK: 'answers of training data'}


class SpecialTokenError(ValueError):
  """User text spells a special token (or a placeholder where it does not belong)."""


def check_text(tokenizer: Tokenizer, text: str, where: str,
               allowed: tuple[str, ...] = ()) -> None:
  """Raises `SpecialTokenError` naming the token and `where` (e.g. 'the question') when
  `text` spells a placeholder not in `allowed` or a special token of `tokenizer`."""
  pieces = re.split('|'.join(re.escape(a) for a in allowed), text) if allowed else [text]
  for piece in pieces:
    token = next((p for p in PLACES if p in piece), None)
    if token is not None:
      why = f'a placeholder that only {PLACES[token]} may hold'
    else:
      token, why = tokenizer.find_special(piece), 'a special token that cannot be typed'
    if token is not None:
      start = max(text.find(token), 0)
      raise SpecialTokenError(f'{where} holds {token!r} as text, {why}: remove it '
                              f'({text[max(start - 40, 0):start + len(token) + 40]!r}).')


QUESTION_STYLES = ('internvl', 'query_first')


@dataclasses.dataclass(frozen=True)
class Referring:
  """A referring request, worded by `referring_question` in the style of the model that
  answers it (`question_text`)."""
  sentences: tuple[str, ...]


def referring_question(sentences, style: str = 'internvl') -> str:
  """The referring-segmentation question about one target.

  internvl: the original's prompt, image first, every sentence followed by '.' (hence
    the double space after the colon).
  query_first: the sentences, then the image (`'the red circle.\n<image>'`): in a causal
    decoder the image tokens then see what is asked (the small model trained from
    scratch; the released checkpoints use internvl).
  """
  if style == 'query_first':
    return ''.join(f'{s}.' for s in sentences) + f'\n{IMAGE}'
  if style != 'internvl':
    raise ValueError(f'question style {style!r}: expected one of {QUESTION_STYLES}.')
  return (f'{IMAGE}\n Given the following instructions: ' + ''.join(f' {s}.' for s in sentences)
          + '; please perform referring segmentation on this image.')


def question_text(question: 'str | Referring', style: str) -> str:
  """A whole question as given, or a `Referring` request worded in `style`."""
  return referring_question(question.sentences, style) if isinstance(question, Referring) \
      else question


def referring_conversation(sentences, style: str = 'internvl') -> list[dict]:
  """One human turn asking for the target, one gpt turn answering with one `<mask>`."""
  return [{'from': 'human', 'value': referring_question(sentences, style)},
          {'from': 'gpt', 'value': REFERRING_ANSWER}]


def referring_dialogue(expressions, style: str = 'internvl') -> list[dict]:
  """One referring question and `<mask>` answer per expression about the same image;
  `<image>` only in the first question (the first exchange is `referring_conversation`)."""
  turns = []
  for k, expression in enumerate(expressions):
    question = referring_question([expression], style)
    if k:
      question = question.replace(f'{IMAGE}\n', '').replace(f'\n{IMAGE}', '')
    turns += [{'from': 'human', 'value': question},
              {'from': 'gpt', 'value': REFERRING_ANSWER}]
  return turns


def expand_image(text: str, num_tiles: int, tokens_per_tile: int = 256) -> str:
  """`<image>` -> `<img><IMG_CONTEXT>... </img>`; exactly one `<image>` per image."""
  count = text.count(IMAGE)
  if count != 1:
    raise ValueError(f'the prompt must hold exactly one {IMAGE} for the one image given, '
                     f'found {count}: {text[:80]!r}')
  return text.replace(IMAGE, '<img>' + '<IMG_CONTEXT>' * (num_tiles * tokens_per_tile) + '</img>')


def expand_masks(text: str, mask_tokens: int = 680) -> str:
  """`<mask>` -> `<ge_start>` + (mask_tokens - 1) x `<MASK_CONTEXT>` + `<ge_end>`."""
  return text.replace(MASK, '<ge_start>' + '<MASK_CONTEXT>' * (mask_tokens - 1) + '<ge_end>')


def _turn(role: str, text: str) -> str:
  return f'<|im_start|>{role}\n{text}<|im_end|>\n'


def check_length(n: int, max_length: int) -> None:
  if n > max_length:
    raise ValueError(f'the prompt is {n} tokens long, over the limit of {max_length}; '
                     'shorten the text, use fewer image tiles, or raise max_length.')


def prompt_ids(tokenizer: Tokenizer, question: 'str | Referring', *, num_tiles: int = 1,
               tokens_per_tile: int = 256, system: str = SYSTEM_PROMPT,
               style: str = 'internvl', max_length: int = 8192) -> list[int]:
  """Inference prompt ids (BOS first), ending with `<|im_start|>assistant\\n`. A
  question without `<image>` gets `<image>\\n` prepended, like InternVL's `chat`
  (appended after a newline in the query_first style)."""
  question = question_text(question, style)
  if not question.replace(IMAGE, '').strip():
    raise ValueError('the prompt is empty: ask a question, e.g. "Please segment the cat."')
  check_text(tokenizer, question, 'the question', allowed=(IMAGE,))
  if IMAGE not in question:
    question = f'{question}\n{IMAGE}' if style == 'query_first' else f'{IMAGE}\n{question}'
  text = (_turn('system', system)
          + _turn('user', expand_image(question, num_tiles, tokens_per_tile))
          + '<|im_start|>assistant\n')
  ids = tokenizer.encode(text, add_bos=True)
  check_length(len(ids), max_length)
  return ids


@dataclasses.dataclass
class Example:
  ids: np.ndarray      # [L] int32
  labels: np.ndarray   # [L] int32, -100 where ignored
  num_masks: int


def training_example(tokenizer: Tokenizer, conversation: list[dict], *, num_tiles: int = 1,
                     tokens_per_tile: int = 256, system: str = SYSTEM_PROMPT,
                     mask_tokens: int = 680, max_length: int = 8192) -> Example:
  """Ids and labels of a conversation `[{'from': 'human'|'gpt', 'value': ...}, ...]`
  (a human turn holds `<image>`, none with `num_tiles=0`: text-only; gpt turns may hold
  `<mask>`; any other markup -> SpecialTokenError). Each turn is tokenised on its own and
  concatenated after one BOS; too long -> ValueError."""
  ids, labels = [tokenizer.bos_id], [IGNORE]
  header = len(tokenizer.encode('<|im_start|>assistant\n'))
  ge_end, mask_context = tokenizer.token_id('<ge_end>'), tokenizer.token_id('<MASK_CONTEXT>')
  images = sum(turn['value'].count(IMAGE) for turn in conversation)
  if images != min(num_tiles, 1):
    raise ValueError(f'a conversation with {num_tiles} image tile(s) must hold '
                     f'{min(num_tiles, 1)} {IMAGE}, found {images}.')
  num_masks = 0
  for k, turn in enumerate([{'from': 'system', 'value': system}] + list(conversation), -1):
    role = {'system': 'system', 'human': 'user', 'gpt': 'assistant'}.get(turn['from'])
    if role is None:
      raise ValueError(f"unknown turn role {turn['from']!r} (system, human or gpt).")
    text = turn['value']
    if role != 'system':
      check_text(tokenizer, text, f"turn {k} ({turn['from']})",
                 allowed=(MASK,) if role == 'assistant' else (IMAGE,))
    if IMAGE in text:
      text = expand_image(text, num_tiles, tokens_per_tile)
    if role == 'assistant':
      num_masks += text.count(MASK)
      turn_ids = tokenizer.encode(_turn(role, expand_masks(text, mask_tokens)))
      turn_labels = [IGNORE] * header + turn_ids[header:-1] + [IGNORE]  # not the final '\n'
      turn_labels = [mask_context if i == ge_end else l for i, l in zip(turn_ids, turn_labels)]
    else:
      turn_ids = tokenizer.encode(_turn(role, text))
      turn_labels = [IGNORE] * len(turn_ids)
    ids += turn_ids
    labels += turn_labels
  check_length(len(ids), max_length)
  return Example(np.asarray(ids, np.int32), np.asarray(labels, np.int32), num_masks)


def parse_question(prompt, expression, names: tuple[str, str], where: str = ''):
  """A whole `prompt`, or a referring `expression` as a `chat_template.Referring` (the
  model asks it in the referring question it was trained with); None if neither is
  given. `names` name the two in errors."""
  prompt = user_input.text_arg(prompt, names[0], 'give a whole question, e.g. "<image>\\n'
                               'Please segment the red circle."', where)
  expression = user_input.text_arg(expression, names[1], 'name what to segment, e.g. "the red '
                                   'circle"', where)
  if prompt is not None and expression is not None:
    raise ValueError(f'{where}give {names[0]} (a whole question) or {names[1]} (wrapped in '
                     'the referring question the models were trained with), not both.')
  return prompt if expression is None else Referring((expression,))
