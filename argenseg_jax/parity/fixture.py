"""Reading golden fixtures (format of `shared/golden/FORMAT.md`, version 1)."""

import dataclasses
import json
import pathlib

import numpy as np

from argenseg_jax.dir_json import read_dir_json

FORMAT_VERSION = 1
CHECKED_RULES = ('exact', 'tolerance')


@dataclasses.dataclass
class Fixture:
  """One fixture folder: its kind, per-output rules, config, arrays and weight files."""
  path: pathlib.Path
  kind: str
  rules: dict
  config: dict
  inputs: dict[str, np.ndarray]
  outputs: dict[str, np.ndarray]
  weights: list[pathlib.Path]


def rule_kind(rule) -> str:
  """'exact', 'tolerance', 'diagnostic' or 'trace'."""
  if isinstance(rule, dict):
    if not {'atol', 'rtol'} <= set(rule):
      raise ValueError(f'tolerance rule {rule} needs atol and rtol.')
    return 'tolerance'
  if rule in ('exact', 'diagnostic', 'trace'):
    return rule
  raise ValueError(f'unknown output rule {rule!r}.')


def load_fixture(path) -> Fixture:
  """Loads a fixture folder, with errors that name the missing piece."""
  path = pathlib.Path(path)
  spec = read_dir_json(path, 'fixture.json', 'golden fixture folder')
  spec_file = path / 'fixture.json'
  if spec.get('format_version') != FORMAT_VERSION:
    raise ValueError(f'{spec_file}: format_version {spec.get("format_version")} is not '
                     f'supported (this checker reads version {FORMAT_VERSION}).')
  for name, rule in spec['outputs'].items():
    try:
      rule_kind(rule)
    except ValueError as e:
      raise ValueError(f'{spec_file}: output {name!r}: {e}') from None
  files = {n: path / n for n in ('config.json', 'inputs.npz', 'outputs.npz')}
  files.update({w: path / w for w in spec.get('weights', [])})
  for name, file in files.items():
    if not file.is_file():
      raise FileNotFoundError(f'fixture {path} lacks {name}.')
  with np.load(files['inputs.npz']) as inputs, np.load(files['outputs.npz']) as outputs:
    return Fixture(
        path=path, kind=spec['kind'], rules=spec['outputs'],
        config=json.loads(files['config.json'].read_text()),
        inputs=dict(inputs), outputs=dict(outputs),
        weights=[files[w] for w in spec.get('weights', [])])
