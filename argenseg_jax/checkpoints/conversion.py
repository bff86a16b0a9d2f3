"""Explicit key-mapping tables from PyTorch checkpoints to our parameter trees.

A table is a list of `Rule(ours, theirs, transform)`: `ours` is a '/'-joined path in
the pure-dict parameter tree, `theirs` the checkpoint key. Conversion is strict: every
parameter needs a rule, every rule a checkpoint key of the right shape, and every
checkpoint key must be used or excused by a named pattern.
"""

import dataclasses
import fnmatch
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from argenseg_jax.checkpoints.torch_files import CheckpointError

def _packed_qkv(a: np.ndarray, part: str, kv_heads: int, groups: int,
                head_dim: int) -> np.ndarray:
  """One of q/k/v from InternLM2's packed `wqkv` `[(KV*(G+2))*hd, D]`, whose rows are
  grouped per kv head as `[q_0 .. q_{G-1}, k, v]`: q -> `[D, KV*G, hd]` (query head
  `g*G + j`), k / v -> `[D, KV, hd]`."""
  w = a.reshape(kv_heads, groups + 2, head_dim, a.shape[-1])
  if part == 'q':
    return w[:, :groups].reshape(kv_heads * groups, head_dim, -1).transpose(2, 0, 1)
  return w[:, {'k': groups, 'v': groups + 1}[part]].transpose(2, 0, 1)


TRANSFORMS: dict[str, Callable[..., np.ndarray]] = {
    'identity': lambda a: a,
    'conv_oihw_to_hwio': lambda a: a.transpose(2, 3, 1, 0),
    'linear_oi_to_io': lambda a: a.T,
    # `[D, H*hd]` output projection -> `[H, hd, D]`
    'linear_to_heads_in': lambda a, heads, head_dim: a.T.reshape(heads, head_dim, -1),
    'packed_qkv': _packed_qkv,
}


@dataclasses.dataclass(frozen=True)
class Rule:
  """`ours <- TRANSFORMS[transform](checkpoint[theirs], *args)`."""
  ours: str
  theirs: str
  transform: str = 'identity'
  args: tuple = ()


def flatten(tree: Mapping, prefix: str = '') -> dict:
  """Nested pure dict -> `{'a/b/0/kernel': leaf}`."""
  out = {}
  for k, v in tree.items():
    path = f'{prefix}{k}'
    if isinstance(v, Mapping):
      out.update(flatten(v, path + '/'))
    else:
      out[path] = v
  return out


def unflatten(flat: Mapping[str, object], like: Mapping) -> dict:
  """Inverse of `flatten`, restoring the key types (int list indices) of `like`."""
  out = {}
  for k, v in like.items():
    if isinstance(v, Mapping):
      out[k] = unflatten({p[len(f'{k}/'):]: x for p, x in flat.items()
                          if p.startswith(f'{k}/')}, v)
    else:
      out[k] = flat[str(k)]
  return out


def convert(table: Sequence[Rule], checkpoint: Mapping[str, np.ndarray],
            expected_shapes: Mapping[str, tuple], *, prefix: str = '',
            excused: Sequence[str] = (), hint: str = '') -> dict[str, np.ndarray]:
  """Maps `checkpoint` through `table` into `{our_path: array}` with strict checks.

  `prefix` is prepended to every checkpoint key (e.g. 'image_tokenizer.'); `excused`
  are fnmatch patterns of checkpoint keys allowed to stay unused; `hint` is appended to
  shape errors (for example the config the checkpoint seems to have been made for).
  """
  by_ours = {r.ours: r for r in table}
  missing_rules = sorted(set(expected_shapes) - set(by_ours))
  if missing_rules:
    raise CheckpointError(f'no conversion rule for parameters {missing_rules[:5]}')
  absent = [prefix + r.theirs for r in table if prefix + r.theirs not in checkpoint]
  if absent:
    raise CheckpointError(
        f'checkpoint lacks {len(absent)} key(s), e.g. {absent[:5]}: it is not a '
        f'checkpoint of this model, or was saved with another key prefix. {hint}')
  out = {}
  for rule in table:
    value = TRANSFORMS[rule.transform](np.asarray(checkpoint[prefix + rule.theirs]), *rule.args)
    want = tuple(expected_shapes[rule.ours])
    if value.shape != want:
      raise CheckpointError(
          f'checkpoint key {prefix + rule.theirs!r} has shape '
          f'{tuple(checkpoint[prefix + rule.theirs].shape)}, which gives {value.shape} '
          f'for {rule.ours!r} but the config needs {want}. {hint}')
    out[rule.ours] = value
  used = {prefix + r.theirs for r in table}
  unused = [k for k in checkpoint if k.startswith(prefix) and k not in used
            and not any(fnmatch.fnmatch(k[len(prefix):], p) for p in excused)]
  if unused:
    raise CheckpointError(f'checkpoint has {len(unused)} key(s) this model does not use, '
                          f'e.g. {sorted(unused)[:5]}: wrong model or config. {hint}')
  return out
