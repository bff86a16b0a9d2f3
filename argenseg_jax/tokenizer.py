"""InternLM2's sentencepiece tokenizer with the checkpoint's added tokens (no transformers).

Like the slow Hugging Face tokenizer: the text is first split on the added tokens
(`<|im_start|>`, `<img>`, `<IMG_CONTEXT>`, `<ge_start>`, ...; longest match first), each
added token becomes its id, and the text between them is encoded by sentencepiece.
"""

import pathlib
import re

import sentencepiece as spm

from argenseg_jax.checkpoints import hf_dir
from argenseg_jax.checkpoints.torch_files import CheckpointError

MODEL_FILE = 'tokenizer.model'


class Tokenizer:
  """`encode(text) -> ids`, `decode(ids) -> text`, `token_id(token)`."""

  def __init__(self, model_file, added_tokens: dict[str, int], *, bos_id: int | None = None):
    model_file = pathlib.Path(model_file)
    if not model_file.is_file():
      raise CheckpointError(f'tokenizer model not found: {model_file}')
    self.sp = spm.SentencePieceProcessor(model_file=str(model_file))
    self.added = dict(added_tokens)
    self.added_by_id = {i: t for t, i in self.added.items()}
    self.bos_id = self.sp.bos_id() if bos_id is None else bos_id
    self._split = re.compile('(' + '|'.join(
        re.escape(t) for t in sorted(self.added, key=len, reverse=True)) + ')') if self.added else None

  @classmethod
  def from_dir(cls, path) -> 'Tokenizer':
    """Reads `tokenizer.model` and the added tokens of a checkpoint directory."""
    path = pathlib.Path(path)
    if not (path / MODEL_FILE).is_file():
      raise CheckpointError(f'{path} has no {MODEL_FILE}: copy the tokenizer files of the '
                            'checkpoint into it.')
    return cls(path / MODEL_FILE, hf_dir.read_added_tokens(path))

  @property
  def vocab_size(self) -> int:
    return max([self.sp.get_piece_size() - 1, *self.added.values()]) + 1

  def token_id(self, token: str) -> int:
    if token in self.added:
      return self.added[token]
    piece = self.sp.piece_to_id(token)
    if piece == self.sp.unk_id() and token != self.sp.id_to_piece(self.sp.unk_id()):
      raise KeyError(f'{token!r} is not a token of this tokenizer.')
    return piece

  def encode(self, text: str, *, add_bos: bool = False) -> list[int]:
    ids = [self.bos_id] if add_bos else []
    parts = self._split.split(text) if self._split else [text]
    for part in parts:
      if part in self.added:
        ids.append(self.added[part])
      elif part:
        ids.extend(self.sp.encode(part))
    return ids

  def decode(self, ids, *, skip_special: bool = False) -> str:
    """Text of `ids`; added tokens as their strings (dropped with `skip_special`), ids
    the tokenizer does not know (e.g. visual codes) as `<id N>` (dropped likewise)."""
    out, run = [], []
    size = self.sp.get_piece_size()
    for i in (int(i) for i in ids):
      if i in self.added_by_id or i == self.bos_id or not 0 <= i < size:
        out.append(self.sp.decode(run))
        run = []
        if not skip_special and i != self.bos_id:
          out.append(self.added_by_id.get(i, f'<id {i}>'))
      else:
        run.append(i)
    out.append(self.sp.decode(run))
    return ''.join(out)
