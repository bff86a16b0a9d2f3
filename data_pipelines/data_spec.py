"""`--data SPEC`: which reader yields the evaluation `RefSample`s.

  custom:FILE.jsonl                 our jsonl format (data_pipelines/custom_reader.py)
  psalm:FILE.json@IMAGE_ROOT        a PSALM-format eval file, e.g. refcoco/val_psalm.json
  refcoco:DIR@SPLIT_BY:SPLIT        refs(SPLIT_BY).p + instances.json in DIR, e.g.
                                    refcoco:data/refcoco@unc:val, refcoco:data/refcocog@umd:test
  meta:FILE.json[@BASE_DIR]         an InternVL / ARGenSeg meta file (data_pipelines/
                                    mixture.py): every source once, the entries with a
                                    mask, metrics per source; relative paths from
                                    BASE_DIR (default: the current directory)
  synthetic:seed=123,n=500          generated scenes (data_pipelines/synthetic_scenes.py);
                                    also size=INT, no_target_fraction=FLOAT,
                                    questions=INT (follow-up questions per scene),
                                    objects=LO-HI (objects per scene),
                                    templates=NAME+NAME (expression templates drawn)

`parse` checks the syntax and that the named paths exist; `open_source` imports the
reader module only then (tfds and friends load only when used). Each kind's reader call
lives in one `Kind` row below. Training (`config.data.spec`) and `argenseg eval
--data` read the same syntax.
"""

import dataclasses
import importlib
from typing import Any, Callable, Sequence

from etils import epath

from argenseg_jax import user_input
from argenseg_jax.ref_sample import RefSample


class DataSpecError(ValueError):
  """A malformed spec or an unknown kind (a missing path is a FileNotFoundError)."""


@dataclasses.dataclass(frozen=True)
class DataSpec:
  kind: str
  text: str                  # the spec as given, for reports
  kwargs: dict[str, Any]     # the reader's constructor arguments


@dataclasses.dataclass(frozen=True)
class Kind:
  syntax: str
  module: str                                  # imported by `open_source`
  factory: str                                 # a callable of `module`: kwargs -> source
  parse: Callable[[str], dict[str, Any]]       # the text after `kind:` -> kwargs


def _existing(path: str, what: str, want_dir: bool = False) -> epath.Path:
  p = user_input.path(path).expanduser()
  if not (p.is_dir() if want_dir else p.is_file()):
    raise FileNotFoundError(f'{what} not found: {p} (no such '
                            f'{"directory" if want_dir else "file"}).')
  return p


def _split_at(rest: str, syntax: str) -> tuple[str, str]:
  head, sep, tail = rest.rpartition('@')
  if not (sep and head and tail):
    raise DataSpecError(f'expected {syntax}, got {rest!r}.')
  return head, tail


def _custom(rest: str) -> dict[str, Any]:
  return {'path': _existing(rest, 'custom jsonl file')}


def _psalm(rest: str) -> dict[str, Any]:
  path, root = _split_at(rest, KINDS['psalm'].syntax)
  return {'path': _existing(path, 'PSALM json file'),
          'image_root': _existing(root, 'image root', want_dir=True)}


def _refcoco(rest: str) -> dict[str, Any]:
  root, split = _split_at(rest, KINDS['refcoco'].syntax)
  split_by, sep, name = split.partition(':')
  if not (sep and split_by and name):
    raise DataSpecError(f'expected {KINDS["refcoco"].syntax}, got {rest!r}.')
  return {'root': _existing(root, 'RefCOCO directory', want_dir=True), 'split_by': split_by,
          'split': name}


def _meta(rest: str) -> dict[str, Any]:
  path, sep, base = rest.rpartition('@') if '@' in rest else (rest, '', '')
  kwargs = {'meta': _existing(path, 'meta file')}
  if sep:
    kwargs['base_dir'] = _existing(base, 'meta base directory', want_dir=True)
  return kwargs


def _int_range(value: str) -> tuple[int, int]:
  low, sep, high = value.partition('-')
  return (int(low), int(high)) if sep else (int(value), int(value))


def _names(value: str) -> tuple[str, ...]:
  return tuple(value.split('+'))


_int_range.__name__ = 'LO-HI integers'
_names.__name__ = 'names joined by +'

# synthetic spec key -> (SyntheticScenes argument, type); n and seed are required.
SYNTHETIC_KEYS = {'n': ('num_samples', int), 'seed': ('seed', int), 'size': ('size', int),
                  'no_target_fraction': ('no_target_fraction', float),
                  'questions': ('questions', int), 'objects': ('num_objects', _int_range),
                  'templates': ('templates', _names)}


def _synthetic(rest: str) -> dict[str, Any]:
  out = {}
  for item in filter(None, rest.split(',')):
    key, sep, value = item.partition('=')
    if not sep or key not in SYNTHETIC_KEYS:
      raise DataSpecError(f'synthetic spec items are key=value with keys '
                          f'{", ".join(SYNTHETIC_KEYS)}; got {item!r}.')
    name, cast = SYNTHETIC_KEYS[key]
    try:
      out[name] = cast(value)
    except ValueError:
      raise DataSpecError(f'synthetic spec {key}={value!r}: expected '
                          f'{cast.__name__}.') from None
  if not {'num_samples', 'seed'} <= out.keys():
    raise DataSpecError(f'synthetic spec needs n= and seed=, got {rest!r}.')
  return out


KINDS = {
    'custom': Kind('custom:FILE.jsonl', 'data_pipelines.custom_reader', 'CustomReader',
                   _custom),
    'psalm': Kind('psalm:FILE.json@IMAGE_ROOT', 'data_pipelines.psalm_reader',
                  'PsalmReader', _psalm),
    'refcoco': Kind('refcoco:DIR@SPLIT_BY:SPLIT', 'data_pipelines.refcoco_reader',
                    'RefCocoReader', _refcoco),
    'meta': Kind('meta:FILE.json[@BASE_DIR]', 'data_pipelines.mixture', 'Mixture', _meta),
    'synthetic': Kind('synthetic:seed=INT,n=INT[,KEY=VALUE...]',
                      'data_pipelines.synthetic_scenes', 'SyntheticScenes', _synthetic),
}


def _known() -> str:
  return ', '.join(k.syntax for k in KINDS.values())


def parse(text: str) -> DataSpec:
  """`'custom:val.jsonl'` -> DataSpec; DataSpecError naming the problem otherwise."""
  kind, sep, rest = text.partition(':')
  if not sep or kind not in KINDS:
    raise DataSpecError(f'unknown data spec {text!r}; known kinds: {_known()}.')
  return DataSpec(kind=kind, text=text, kwargs=KINDS[kind].parse(rest))


def open_source(spec: DataSpec | str, training: bool = False) -> Sequence[RefSample]:
  """The reader for `spec`: a random-access source (`len`, `[i]` -> RefSample). PSALM
  files keep their understanding and text-only entries for `training` only; `meta:` is an
  evaluation view (training reads a meta file through `config.data.meta`)."""
  spec = parse(spec) if isinstance(spec, str) else spec
  kwargs = dict(spec.kwargs)
  if spec.kind == 'meta' and training:
    raise DataSpecError(f'{spec.text}: a meta file trains through config.data.meta (and '
                        f'config.data.meta_root), which mixes its sources by repeat_time; '
                        f'meta: in a data spec is the evaluation view.')
  if spec.kind in ('meta', 'psalm'):
    kwargs['training'] = training
  kind = KINDS[spec.kind]
  return getattr(importlib.import_module(kind.module), kind.factory)(**kwargs)
