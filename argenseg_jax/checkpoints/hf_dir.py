"""Reading a Hugging Face-style checkpoint directory without transformers.

`config.json`, `model.safetensors` or sharded `model-0000x-of-0000y.safetensors` with
`model.safetensors.index.json` (opened lazily: a tensor is read when it is used), and the
tokenizer files (`tokenizer.model` plus the added tokens in `added_tokens.json` or
`tokenizer_config.json`). A directory in the cloud (`user_input.path`) is read the same
way from a local copy of each safetensors file, made when the file is opened and
deleted once no tensor of it is left.
"""

import math
import os
import shutil
import tempfile
import weakref

import ml_dtypes
import numpy as np
from etils import epath
from safetensors import safe_open

from argenseg_jax import user_input
from argenseg_jax.checkpoints.torch_files import CheckpointError
from argenseg_jax.dir_json import read_dir_json, read_json

INDEX = 'model.safetensors.index.json'
SINGLE = 'model.safetensors'
ADDED_TOKENS_FILE = 'added_tokens.json'


def read_config(path) -> dict:
  return read_dir_json(path, 'config.json', 'Hugging Face-style checkpoint directory',
                       CheckpointError)


# safetensors dtype names -> numpy dtypes (bfloat16 from ml_dtypes, as jax uses)
DTYPES = {'F64': np.float64, 'F32': np.float32, 'F16': np.float16, 'BF16': ml_dtypes.bfloat16,
          'I64': np.int64, 'I32': np.int32, 'I16': np.int16, 'I8': np.int8, 'U8': np.uint8,
          'BOOL': np.bool_}


class LazyTensor:
  """One tensor of a safetensors file, read when used: `np.asarray(t)` reads all of it,
  `t[a:b]` only rows `a:b` of its leading axis. The file is opened per read, so nothing
  stays mapped between reads."""

  def __init__(self, file: os.PathLike, key: str, shape: tuple, dtype: np.dtype):
    self.file, self.key, self.shape, self.dtype = file, key, shape, dtype

  @property
  def nbytes(self) -> int:
    return math.prod(self.shape) * self.dtype.itemsize

  def __getitem__(self, rows: slice) -> np.ndarray:
    with safe_open(self.file, 'numpy') as f:
      return f.get_slice(self.key)[rows]

  def __array__(self, dtype=None, copy=None):
    with safe_open(self.file, 'numpy') as f:
      value = f.get_tensor(self.key)
    return value if dtype is None else value.astype(dtype, copy=False)


class _LocalCopy(os.PathLike):
  """A local temporary copy of a cloud file, deleted with the last reference to it."""

  def __init__(self, source: epath.Path):
    handle, self.name = tempfile.mkstemp(suffix=source.suffix)
    weakref.finalize(self, os.remove, self.name)
    with os.fdopen(handle, 'wb') as out, source.open('rb') as f:
      shutil.copyfileobj(f, out)

  def __fspath__(self) -> str:
    return self.name


def _open_file(path: epath.Path) -> dict[str, LazyTensor]:
  local = path if user_input.is_local(path) else _LocalCopy(path)
  try:
    with safe_open(local, 'numpy') as f:
      slices = {k: f.get_slice(k) for k in f.keys()}
      specs = {k: (v.get_shape(), v.get_dtype()) for k, v in slices.items()}
  except Exception as e:
    raise CheckpointError(f'{path} is not a readable safetensors file: {e}') from e
  unknown = {k: d for k, (_, d) in specs.items() if d not in DTYPES}
  if unknown:
    raise CheckpointError(f'{path} holds tensors of unsupported dtypes: {unknown}.')
  return {k: LazyTensor(local, k, tuple(s), np.dtype(DTYPES[d])) for k, (s, d) in specs.items()}


def open_weights(path) -> dict[str, LazyTensor]:
  """`{key: LazyTensor}` of every tensor of the directory (only the headers are read),
  checking the shard index against the files."""
  path = user_input.path(path)
  if (path / INDEX).is_file():
    weight_map = read_json(path / INDEX, CheckpointError).get('weight_map', {})
    shards = sorted(set(weight_map.values()))
    missing = [s for s in shards if not (path / s).is_file()]
    if missing:
      raise CheckpointError(f'{path} lacks {len(missing)} of the {len(shards)} shards listed '
                            f'in {INDEX}: {missing[:4]}; download them again.')
    weights = {}
    for shard in shards:
      weights.update(_open_file(path / shard))
    unlisted = sorted(set(weight_map) - set(weights))
    if unlisted:
      raise CheckpointError(f'{INDEX} lists keys missing from their shards: {unlisted[:4]}.')
    return weights
  if (path / SINGLE).is_file():
    return _open_file(path / SINGLE)
  raise CheckpointError(f'{path} has neither {SINGLE} nor {INDEX}.')


def read_added_tokens(path) -> dict[str, int]:
  """`{token: id}` of the tokenizer's added (special) tokens."""
  path = user_input.path(path)
  if (path / ADDED_TOKENS_FILE).is_file():
    return {k: int(v) for k, v in read_json(path / ADDED_TOKENS_FILE, CheckpointError).items()}
  if (path / 'tokenizer_config.json').is_file():
    decoder = read_json(path / 'tokenizer_config.json', CheckpointError).get(
        'added_tokens_decoder', {})
    if decoder:
      return {v['content']: int(k) for k, v in decoder.items()}
  raise CheckpointError(f'{path} has no tokenizer files with added tokens (added_tokens.json '
                        'or tokenizer_config.json): copy the tokenizer files of the '
                        'checkpoint into it.')
