"""Tokenizers with added special tokens (no transformers).

Like the slow Hugging Face tokenizers: the text is first split on the added tokens
(`<|im_start|>`, `<img>`, `<IMG_CONTEXT>`, `<ge_start>`, ...; longest match first), each
added token becomes its id, and the text between them goes to the base tokenizer:
InternLM2's sentencepiece model (`SentencePieceTokenizer`, the real checkpoints) or
UTF-8 bytes (`ByteTokenizer`, the small models trained from scratch). `special_tokens` are the added
tokens and the base tokenizer's own (`<s>`, `</s>`, `<unk>`, user-defined symbols);
`find_special` tells whether a text spells one.
"""

import functools
import json
import re

import sentencepiece as spm
from etils import epath
from sentencepiece import sentencepiece_model_pb2

from argenseg_jax import dir_json, user_input
from argenseg_jax.checkpoints import hf_dir
from argenseg_jax.checkpoints.torch_files import CheckpointError

MODEL_FILE = 'tokenizer.model'
BYTE_TOKENIZER_FILE = 'byte_tokenizer.json'


class Tokenizer:
  """`encode(text) -> ids`, `decode(ids) -> text`, `token_id(token)` around a base
  tokenizer that subclasses provide (`_encode_plain`, `_decode_plain`, `_plain_size`,
  `_plain_specials`)."""

  def __init__(self, added_tokens: dict[str, int], bos_id: int):
    self.added = dict(added_tokens)
    self.added_by_id = {i: t for t, i in self.added.items()}
    self.bos_id = bos_id
    by_length = sorted(self.added, key=len, reverse=True)  # the longest match first
    self._split = (re.compile('(' + '|'.join(map(re.escape, by_length)) + ')')
                   if self.added else None)

  @property
  def vocab_size(self) -> int:
    return max([self._plain_size() - 1, *self.added.values()]) + 1

  @functools.cached_property
  def special_tokens(self) -> tuple[str, ...]:
    """The added tokens and the base tokenizer's special ones, longest first."""
    return tuple(sorted(set(self.added) | set(self._plain_specials()), key=len, reverse=True))

  @functools.cached_property
  def _special_pattern(self) -> re.Pattern:
    return re.compile('|'.join(re.escape(t) for t in self.special_tokens))

  def find_special(self, text: str) -> str | None:
    """The first special token that `text` spells, also after the base tokenizer's
    normalisation (which may turn look-alike characters into one), or None."""
    for candidate in (text, self._normalize(text)):
      match = self._special_pattern.search(candidate)
      if match:
        return match.group()
    return None

  def _normalize(self, text: str) -> str:
    return text

  def token_id(self, token: str) -> int:
    if token in self.added:
      return self.added[token]
    return self._plain_token_id(token)

  def encode(self, text: str, *, add_bos: bool = False) -> list[int]:
    ids = [self.bos_id] if add_bos else []
    parts = self._split.split(text) if self._split else [text]
    for part in parts:
      if part in self.added:
        ids.append(self.added[part])
      elif part:
        ids.extend(self._encode_plain(part))
    return ids

  def decode(self, ids, *, skip_special: bool = False) -> str:
    """Text of `ids`; added tokens as their strings (dropped with `skip_special`), ids
    the tokenizer does not know (e.g. visual codes) as `<id N>` (dropped likewise)."""
    out, run = [], []
    size = self._plain_size()
    for i in (int(i) for i in ids):
      if i in self.added_by_id or i == self.bos_id or not 0 <= i < size:
        out.append(self._decode_plain(run))
        run = []
        if not skip_special and i != self.bos_id:
          out.append(self.added_by_id.get(i, f'<id {i}>'))
      else:
        run.append(i)
    out.append(self._decode_plain(run))
    return ''.join(out)


class SentencePieceTokenizer(Tokenizer):
  """InternLM2's sentencepiece model plus the checkpoint's added tokens."""

  def __init__(self, model_file, added_tokens: dict[str, int], *, bos_id: int | None = None):
    model_file = user_input.path(model_file)
    if not model_file.is_file():
      raise CheckpointError(f'tokenizer model not found: {model_file}')
    self.sp = spm.SentencePieceProcessor(model_proto=model_file.read_bytes())
    super().__init__(added_tokens, self.sp.bos_id() if bos_id is None else bos_id)

  def _plain_size(self) -> int:
    return self.sp.get_piece_size()

  def _plain_specials(self) -> list[str]:
    """`<unk>`, the control pieces (`<s>`, `</s>`) and the user-defined symbols."""
    model = sentencepiece_model_pb2.ModelProto.FromString(self.sp.serialized_model_proto())
    kinds = {model.SentencePiece.UNKNOWN, model.SentencePiece.CONTROL,
             model.SentencePiece.USER_DEFINED}
    return [p.piece for p in model.pieces if p.type in kinds]

  def _normalize(self, text: str) -> str:
    return self.sp.normalize(text)

  def _plain_token_id(self, token: str) -> int:
    piece = self.sp.piece_to_id(token)
    if piece == self.sp.unk_id() and token != self.sp.id_to_piece(self.sp.unk_id()):
      raise KeyError(f'{token!r} is not a token of this tokenizer.')
    return piece

  def _encode_plain(self, text: str) -> list[int]:
    return self.sp.encode(text)

  def _decode_plain(self, ids: list[int]) -> str:
    return self.sp.decode(ids)

  @classmethod
  def with_tokens(cls, model_file, tokens) -> 'SentencePieceTokenizer':
    """`model_file` plus added tokens numbered consecutively after its pieces."""
    size = cls(model_file, {}).sp.get_piece_size()
    return cls(model_file, {t: size + i for i, t in enumerate(tokens)})

  def save(self, path) -> epath.Path:
    """Writes `tokenizer.model` and `added_tokens.json` into the directory `path`."""
    path = user_input.path(path)
    (path / MODEL_FILE).write_bytes(self.sp.serialized_model_proto())
    (path / hf_dir.ADDED_TOKENS_FILE).write_text(json.dumps(self.added, indent=1,
                                                            ensure_ascii=False))
    return path / MODEL_FILE


class ByteTokenizer(Tokenizer):
  """UTF-8 bytes: ids 0/1/2 are `<unk>`/`<s>`/`</s>`, byte b is id `3 + b`, then the
  added tokens. Stored as `byte_tokenizer.json` (`{"added_tokens": {...}}`)."""

  OFFSET = 3

  def __init__(self, added_tokens: dict[str, int]):
    clash = {t: i for t, i in added_tokens.items() if i < self.OFFSET + 256}
    if clash:
      raise ValueError(f'added tokens must have ids >= {self.OFFSET + 256}, got {clash}.')
    super().__init__(added_tokens, bos_id=1)

  @classmethod
  def with_tokens(cls, tokens) -> 'ByteTokenizer':
    """Added tokens numbered consecutively after the bytes, in the order given."""
    return cls({t: cls.OFFSET + 256 + i for i, t in enumerate(tokens)})

  def save(self, path) -> epath.Path:
    path = user_input.path(path) / BYTE_TOKENIZER_FILE
    path.write_text(json.dumps({'added_tokens': self.added}, indent=1, ensure_ascii=False))
    return path

  def _plain_size(self) -> int:
    return self.OFFSET + 256

  def _plain_specials(self) -> list[str]:
    return ['<unk>', '<s>', '</s>']

  def _plain_token_id(self, token: str) -> int:
    raw = token.encode('utf-8')
    if len(raw) != 1:
      raise KeyError(f'{token!r} is not one byte nor an added token of this tokenizer.')
    return self.OFFSET + raw[0]

  def _encode_plain(self, text: str) -> list[int]:
    return [self.OFFSET + b for b in text.encode('utf-8')]

  def _decode_plain(self, ids: list[int]) -> str:
    return bytes(i - self.OFFSET for i in ids if i >= self.OFFSET).decode('utf-8', 'replace')


def scratch_tokenizer(model_cfg) -> Tokenizer:
  """The tokenizer of a model trained from scratch: its `vocabulary` (a sentencepiece
  model file; a bare name is one of the package's assets) or UTF-8 bytes when that is
  empty, then its `added_tokens` in order."""
  if model_cfg.get('vocabulary'):
    from argenseg_jax import bundled  # pylint: disable=import-outside-toplevel
    return SentencePieceTokenizer.with_tokens(bundled.ASSETS / model_cfg.vocabulary,
                                              model_cfg.added_tokens)
  return ByteTokenizer.with_tokens(model_cfg.added_tokens)


def load_tokenizer(path) -> Tokenizer:
  """The tokenizer of a checkpoint directory: `tokenizer.model` + added tokens
  (sentencepiece) or `byte_tokenizer.json`."""
  path = user_input.path(path)
  if (path / BYTE_TOKENIZER_FILE).is_file():
    added = dir_json.read_json(path / BYTE_TOKENIZER_FILE, CheckpointError).get('added_tokens')
    if not isinstance(added, dict):
      raise CheckpointError(f'{path / BYTE_TOKENIZER_FILE} has no "added_tokens" object.')
    return ByteTokenizer(added)
  if not (path / MODEL_FILE).is_file():
    raise CheckpointError(f'{path} has no {MODEL_FILE} (nor {BYTE_TOKENIZER_FILE}): copy the '
                          'tokenizer files of the checkpoint into it.')
  return SentencePieceTokenizer(path / MODEL_FILE, hf_dir.read_added_tokens(path))
