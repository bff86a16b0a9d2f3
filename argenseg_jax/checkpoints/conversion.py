"""Explicit key-mapping tables from PyTorch checkpoints to our parameter trees.

A table is a list of `Rule(ours, theirs, transform)`: `ours` is a '/'-joined path in
the pure-dict parameter tree, `theirs` the checkpoint key. Conversion is strict: every
parameter needs a rule, every rule a checkpoint key of the right shape, and every
checkpoint key must be used or excused by a named pattern.
"""

import dataclasses
import fnmatch
import functools
import math
from collections.abc import Callable, Mapping, Sequence

import jax
import numpy as np

from argenseg_jax.checkpoints.torch_files import CheckpointError


def _pad_vocab(a: np.ndarray, axis: int, n: int, size: int) -> np.ndarray:
  """`a` of `n` entries along `axis` zero-padded at the end to `size` (numpy or traced);
  another count is a ValueError (a checkpoint of another vocabulary)."""
  if a.shape[axis] != n:
    raise ValueError(f'{a.shape[axis]} vocabulary rows, the config has {n}')
  widths = [(0, 0)] * a.ndim
  widths[axis] = (0, size - a.shape[axis])
  return (np if isinstance(a, np.ndarray) else jax.numpy).pad(a, widths)


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
    # `[V, D]` -> `[V_padded, D]` / `[D, V_padded]` with zeros (`internlm2.VOCAB_MULTIPLE`)
    'pad_rows': lambda a, n, padded: _pad_vocab(a, 0, n, padded),
    'linear_oi_to_io_pad': lambda a, n, padded: _pad_vocab(a.T, 1, n, padded),
}

def _pack_qkv(parts: dict[str, np.ndarray], kv_heads: int, groups: int,
              head_dim: int) -> np.ndarray:
  """The inverse of `_packed_qkv`: q `[D, KV*G, hd]`, k, v `[D, KV, hd]` -> `wqkv`."""
  d = parts['q'].shape[0]
  q = parts['q'].reshape(d, kv_heads, groups, head_dim)
  w = np.concatenate([q, parts['k'][:, :, None], parts['v'][:, :, None]], axis=2)
  return w.transpose(1, 2, 3, 0).reshape(kv_heads * (groups + 2) * head_dim, d)


# The inverse of each one-to-one transform (`to_checkpoint`).
INVERSE: dict[str, Callable[..., np.ndarray]] = {
    'identity': lambda a: a,
    'conv_oihw_to_hwio': lambda a: a.transpose(3, 2, 0, 1),
    'linear_oi_to_io': lambda a: a.T,
    'linear_to_heads_in': lambda a, heads, head_dim: a.reshape(heads * head_dim, -1).T,
    'pad_rows': lambda a, n, padded: a[:n],
    'linear_oi_to_io_pad': lambda a, n, padded: a[:, :n].T,
}


# The output axis that a transform moves the checkpoint tensor's leading axis to, each
# row converted on its own: rows a:b give the output's a:b along that axis, so such
# tensors convert in row blocks (`convert_lazily`).
ROW_AXIS = {'identity': 0, 'conv_oihw_to_hwio': -1, 'linear_oi_to_io': -1,
            'linear_to_heads_in': -1, 'pad_rows': 0, 'linear_oi_to_io_pad': -1}
# A padding transform converts a block of rows as its unpadded form does (the padding is
# the part of the output no block covers).
BLOCK_TRANSFORM = {'pad_rows': 'identity', 'linear_oi_to_io_pad': 'linear_oi_to_io'}
# Size of the row blocks `convert_lazily` reads at a time.
BLOCK_BYTES = 16 * 2 ** 20


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


def _rules_by_key(table: Sequence[Rule], prefix: str) -> dict[str, list[Rule]]:
  """The rules of each checkpoint key, in table order (a packed key has several)."""
  out = {}
  for rule in table:
    out.setdefault(prefix + rule.theirs, []).append(rule)
  return out


@functools.lru_cache(maxsize=None)
def _converted_shape(transform: str, args: tuple, shape: tuple) -> tuple:
  """The shape `TRANSFORMS[transform]` gives a `shape` tensor, computed without data."""
  value = jax.ShapeDtypeStruct(shape, np.float32)
  return tuple(jax.eval_shape(lambda a: TRANSFORMS[transform](a, *args), value).shape)


def check(table: Sequence[Rule], checkpoint: Mapping, expected_shapes: Mapping[str, tuple],
          *, prefix: str = '', excused: Sequence[str] = (), hint: str = '') -> None:
  """Raises the `CheckpointError` that `convert` would, from shapes alone (nothing is read:
  `checkpoint` values only need `.shape`)."""
  by_ours = {r.ours: r for r in table}
  missing_rules = sorted(set(expected_shapes) - set(by_ours))
  if missing_rules:
    raise CheckpointError(f'no conversion rule for parameters {missing_rules[:5]}')
  absent = [prefix + r.theirs for r in table if prefix + r.theirs not in checkpoint]
  if absent:
    raise CheckpointError(
        f'checkpoint lacks {len(absent)} key(s), e.g. {absent[:5]}: it is not a '
        f'checkpoint of this model, or was saved with another key prefix. {hint}')
  for rule in table:
    key = prefix + rule.theirs
    shape, want = tuple(checkpoint[key].shape), tuple(expected_shapes[rule.ours])
    try:
      got = _converted_shape(rule.transform, rule.args, shape)
    except (TypeError, ValueError):
      got = None
    if got != want:
      gives = (f'which gives {got}' if got is not None
               else f'which {rule.transform!r} cannot convert')
      raise CheckpointError(
          f'checkpoint key {key!r} has shape {shape}, {gives} for {rule.ours!r} but the '
          f'config needs {want}. {hint}')
  used = {prefix + r.theirs for r in table}
  unused = [k for k in checkpoint if k.startswith(prefix) and k not in used
            and not any(fnmatch.fnmatch(k[len(prefix):], p) for p in excused)]
  if unused:
    raise CheckpointError(f'checkpoint has {len(unused)} key(s) this model does not use, '
                          f'e.g. {sorted(unused)[:5]}: wrong model or config. {hint}')


def convert(table: Sequence[Rule], checkpoint: Mapping[str, np.ndarray],
            expected_shapes: Mapping[str, tuple], *, prefix: str = '',
            excused: Sequence[str] = (), hint: str = '') -> dict[str, np.ndarray]:
  """Maps `checkpoint` through `table` into `{our_path: array}` with strict checks.

  `prefix` is prepended to every checkpoint key (e.g. 'image_tokenizer.'); `excused`
  are fnmatch patterns of checkpoint keys allowed to stay unused; `hint` is appended to
  shape errors (for example the config the checkpoint seems to have been made for).
  """
  check(table, checkpoint, expected_shapes, prefix=prefix, excused=excused, hint=hint)
  return {r.ours: TRANSFORMS[r.transform](np.asarray(checkpoint[prefix + r.theirs]), *r.args)
          for r in table}


@dataclasses.dataclass(frozen=True)
class KeyRead:
  """The conversion of one checkpoint key: `read()` reads it once and returns the
  C-contiguous parameters `ours` it gives; `nbytes` bounds the memory that takes."""
  nbytes: int
  read: Callable[[], dict[str, np.ndarray]]
  ours: tuple[str, ...]


def _by_rows(src, rule: Rule, shape: tuple) -> np.ndarray:
  """`TRANSFORMS[rule.transform](src)` converted `BLOCK_BYTES` of rows at a time."""
  out = np.zeros(shape, src.dtype)  # padding (rows the checkpoint lacks) stays zero
  axis = ROW_AXIS[rule.transform] % len(shape)
  step = max(1, BLOCK_BYTES // max(1, math.prod(src.shape[1:]) * out.itemsize))
  for start in range(0, src.shape[0], step):
    stop = min(start + step, src.shape[0])
    block = np.asarray(src[start:stop])
    out[(slice(None),) * axis + (slice(start, stop),)] = (
        TRANSFORMS[BLOCK_TRANSFORM[rule.transform]](block) if rule.transform in BLOCK_TRANSFORM
        else TRANSFORMS[rule.transform](block, *rule.args))
  return out


def _key_read(src, rules: list[Rule], expected_shapes: Mapping) -> KeyRead:
  itemsize = np.dtype(src.dtype).itemsize
  out_bytes = sum(math.prod(expected_shapes[r.ours]) for r in rules) * itemsize
  src_bytes = math.prod(src.shape) * itemsize
  if len(rules) == 1 and rules[0].transform in ROW_AXIS and src.shape:
    rule = rules[0]
    return KeyRead(out_bytes + 2 * min(src_bytes, BLOCK_BYTES),
                   lambda: {rule.ours: _by_rows(src, rule, tuple(expected_shapes[rule.ours]))},
                   (rule.ours,))

  def read():
    value = np.asarray(src)
    return {r.ours: np.ascontiguousarray(TRANSFORMS[r.transform](value, *r.args))
            for r in rules}
  return KeyRead(out_bytes + src_bytes, read, tuple(r.ours for r in rules))


def convert_lazily(table: Sequence[Rule], checkpoint: Mapping,
                   expected_shapes: Mapping[str, tuple], *, prefix: str = '',
                   excused: Sequence[str] = (), hint: str = '') -> list[KeyRead]:
  """`convert` one checkpoint key at a time: the same strict checks first (from shapes,
  nothing read), then one `KeyRead` per key. A key is read once even when it gives
  several parameters (InternLM2's packed `wqkv`); one whose transform has a `ROW_AXIS` is
  read and converted in blocks of rows, so converting it needs about its own size.
  `checkpoint` values need `.shape`, `.dtype`, `np.asarray` and, for row blocks,
  slicing of the leading axis (numpy arrays, `hf_dir.LazyTensor`)."""
  check(table, checkpoint, expected_shapes, prefix=prefix, excused=excused, hint=hint)
  return [_key_read(checkpoint[key], rules, expected_shapes)
          for key, rules in _rules_by_key(table, prefix).items()]


def to_checkpoint(table: Sequence[Rule], flat: Mapping[str, np.ndarray], *,
                  prefix: str = '') -> dict[str, np.ndarray]:
  """Our parameters `flat` (`{path: array}`, one layer at a time as the table addresses
  them) back in the checkpoint's key names and layouts: the inverse of `convert`."""
  out = {}
  for key, rules in _rules_by_key(table, prefix).items():
    if rules[0].transform == 'packed_qkv':
      parts = {r.args[0]: np.asarray(flat[r.ours]) for r in rules}
      value = _pack_qkv(parts, *rules[0].args[1:])
    else:
      (rule,) = rules
      value = INVERSE[rule.transform](np.asarray(flat[rule.ours]), *rule.args)
    out[key] = np.ascontiguousarray(value)
  return out
