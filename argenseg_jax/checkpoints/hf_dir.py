"""Reading a Hugging Face-style checkpoint directory without transformers.

`config.json`, `model.safetensors` or sharded `model-0000x-of-0000y.safetensors` with
`model.safetensors.index.json`, and the tokenizer files (`tokenizer.model` plus the added
tokens in `added_tokens.json` or `tokenizer_config.json`).
"""

import json
import pathlib

import numpy as np

from argenseg_jax.checkpoints.torch_files import CheckpointError, read_safetensors
from argenseg_jax.dir_json import read_dir_json

INDEX = 'model.safetensors.index.json'
SINGLE = 'model.safetensors'


def read_config(path) -> dict:
  return read_dir_json(path, 'config.json', 'Hugging Face-style checkpoint directory',
                       CheckpointError)


def read_weights(path) -> dict[str, np.ndarray]:
  """All tensors of the directory, checking the shard index against the files."""
  path = pathlib.Path(path)
  if (path / INDEX).is_file():
    weight_map = json.loads((path / INDEX).read_text()).get('weight_map', {})
    shards = sorted(set(weight_map.values()))
    missing = [s for s in shards if not (path / s).is_file()]
    if missing:
      raise CheckpointError(f'{path} lacks {len(missing)} of the {len(shards)} shards listed '
                            f'in {INDEX}: {missing[:4]}; download them again.')
    weights = {}
    for shard in shards:
      weights.update(read_safetensors(path / shard))
    unlisted = sorted(set(weight_map) - set(weights))
    if unlisted:
      raise CheckpointError(f'{INDEX} lists keys missing from their shards: {unlisted[:4]}.')
    return weights
  if (path / SINGLE).is_file():
    return read_safetensors(path / SINGLE)
  raise CheckpointError(f'{path} has neither {SINGLE} nor {INDEX}.')


def read_added_tokens(path) -> dict[str, int]:
  """`{token: id}` of the tokenizer's added (special) tokens."""
  path = pathlib.Path(path)
  if (path / 'added_tokens.json').is_file():
    return {k: int(v) for k, v in json.loads((path / 'added_tokens.json').read_text()).items()}
  if (path / 'tokenizer_config.json').is_file():
    decoder = json.loads((path / 'tokenizer_config.json').read_text()).get(
        'added_tokens_decoder', {})
    if decoder:
      return {v['content']: int(k) for k, v in decoder.items()}
  raise CheckpointError(f'{path} has no tokenizer files with added tokens (added_tokens.json '
                        'or tokenizer_config.json): copy the tokenizer files of the '
                        'checkpoint into it.')
