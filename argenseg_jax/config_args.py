"""Parsing of `get_config(arg)` strings and loading config files by name or path.

`arg` is `key=value,key=value`; values are cast to the type of the default, and lists
use `+` as separator (`patch_nums=1+2+4`). Unknown keys are refused with the valid ones.

`apply_overrides` takes `--config.a.b=value` as `ml_collections.config_flags` spells it,
but is not built on it: config_flags defines each field as a flag of an absl parser that
owns the whole command line, while `argenseg` is an argparse command with subcommands
and errors that exit 2 in one line. The overrides use the same casts as `arg`.
"""

import importlib.util
import pathlib
from typing import Any

import ml_collections


def config_dir() -> pathlib.Path:
  """The folder of the named configs: `configs/`, installed as `argenseg_jax.configs`
  (setup.py), or the checkout's when the package runs from its source tree."""
  spec = importlib.util.find_spec('argenseg_jax.configs')
  if spec is not None and spec.submodule_search_locations:
    return pathlib.Path(next(iter(spec.submodule_search_locations)))
  return pathlib.Path(__file__).resolve().parent.parent / 'configs'


def _cast(key: str, text: str, default: Any) -> Any:
  try:
    if isinstance(default, bool):
      if text.lower() not in ('true', 'false', '1', '0'):
        raise ValueError(text)
      return text.lower() in ('true', '1')
    if isinstance(default, (tuple, list)):
      item = type(default[0]) if default else str  # an empty default holds names
      return tuple(item(v) for v in text.split('+'))
    return type(default)(text)
  except ValueError:
    raise ValueError(f'config arg {key}={text!r}: expected a value like '
                     f'{default!r}.') from None


def parse_arg(arg: str | None, **defaults: Any) -> ml_collections.ConfigDict:
  """`parse_arg('variant=tiny', variant='real', res=256)` -> ConfigDict of all keys."""
  out = dict(defaults)
  for item in filter(None, (arg or '').split(',')):
    key, sep, value = item.partition('=')
    if not sep:
      raise ValueError(f'config arg {item!r} must look like key=value.')
    if key not in defaults:
      raise ValueError(f'unknown config arg {key!r}; valid: {", ".join(defaults)}.')
    out[key] = _cast(key, value, defaults[key])
  return ml_collections.ConfigDict(out)


def load_config(spec: str) -> ml_collections.ConfigDict:
  """Loads `NAME[:ARG]` (a file in `configs/`) or `PATH.py[:ARG]` via its `get_config`."""
  name, _, arg = spec.partition(':')
  path = pathlib.Path(name)
  if path.suffix != '.py':
    path = config_dir() / f'{name}.py'
  if not path.is_file():
    known = sorted(p.stem for p in config_dir().glob('*.py') if p.stem != '__init__')
    raise FileNotFoundError(f'config {name!r} not found at {path}; known configs: '
                            f'{", ".join(known)} (or give a path to a .py file).')
  module_spec = importlib.util.spec_from_file_location(f'_config_{path.stem}', path)
  module = importlib.util.module_from_spec(module_spec)
  module_spec.loader.exec_module(module)
  return module.get_config(arg or None)


def from_json(data: dict) -> ml_collections.ConfigDict:
  """A ConfigDict from JSON-decoded data, lists turned back into tuples."""
  def fix(v):
    if isinstance(v, dict):
      return {k: fix(x) for k, x in v.items()}
    return tuple(fix(x) for x in v) if isinstance(v, list) else v
  return ml_collections.ConfigDict(fix(data))


def apply_overrides(config: ml_collections.ConfigDict, items) -> ml_collections.ConfigDict:
  """`--config.a.b=value` style overrides (`items` like `'a.b=value'`), each cast to the
  type of the value it replaces; unknown fields are refused."""
  for item in items:
    path, sep, text = item.partition('=')
    if not sep:
      raise ValueError(f'override {item!r} must look like --config.field=value.')
    *parents, key = path.split('.')
    node = config
    for name in parents:
      node = node.get(name) if isinstance(node, ml_collections.ConfigDict) else None
    if not isinstance(node, ml_collections.ConfigDict) or key not in node:
      raise ValueError(f'--config.{path}: no such config field.')
    node[key] = _cast(path, text, node[key])
  return config
