"""`{param_path: PartitionSpec}` of ARGenSeg on a mesh, from the abstract model only.

The mesh is abstract (`sharding.abstract_mesh`), so any size can be dumped from one CPU.
Regenerate the golden table of `tests/test_sharding_golden.py` after an intended change:

  python -m argenseg_jax.sharding_dump --config argenseg:variant=8b \
      --mesh data=1,fsdp=4,tensor=2 --out tests/golden_sharding/argenseg_8b_fsdp4_tensor2.json
"""

import argparse
import json
import pathlib
import sys

import ml_collections
from flax import nnx

from argenseg_jax import config_args, sharding
from argenseg_jax.checkpoints import conversion, params

_ABSTRACT: dict[str, nnx.Module] = {}


def load_config(config: str | ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """An ARGenSeg config from a spec (`argenseg:variant=8b`) or as given."""
  cfg = config_args.load_config(config) if isinstance(config, str) else config
  if cfg.get('name') != 'argenseg':
    raise ValueError(f"expected an ARGenSeg config (name 'argenseg'), got "
                     f"{cfg.get('name')!r}; e.g. --config argenseg:variant=8b.")
  return cfg


def abstract_model(cfg: ml_collections.ConfigDict) -> nnx.Module:
  """The abstract ARGenSeg of `cfg` (`ShapeDtypeStruct` params), built once per config
  and process (the 8B build traces for ~15 s); shared: read it, do not modify it."""
  from argenseg_jax.models.argenseg import ARGenSeg  # pylint: disable=import-outside-toplevel
  key = cfg.to_json_best_effort(sort_keys=True)
  if key not in _ABSTRACT:
    _ABSTRACT[key] = params.abstract(lambda rngs: ARGenSeg(cfg, rngs))
  return _ABSTRACT[key]


def spec_table(model: nnx.Module, mesh) -> dict[str, list]:
  """`{'language_model/output': ['fsdp', None], ...}`: each parameter's mesh
  PartitionSpec as a list (a dimension over several mesh axes is a nested list)."""
  flat = conversion.flatten(nnx.to_pure_dict(sharding.param_specs(model, mesh)))
  return {k: [list(e) if isinstance(e, tuple) else e for e in spec]
          for k, spec in sorted(flat.items(), key=lambda kv: _natural(kv[0]))}


def _natural(path: str) -> tuple:
  """Sort key: 'layers/2' before 'layers/10'."""
  return tuple((0, int(p), '') if p.isdigit() else (1, 0, p) for p in path.split('/'))


def to_json(table: dict[str, list]) -> str:
  """One parameter a line, so that a diff shows exactly which specs changed."""
  lines = (f' {json.dumps(k)}: {json.dumps(v)}' for k, v in table.items())
  return '{\n' + ',\n'.join(lines) + '\n}\n'


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(prog='python -m argenseg_jax.sharding_dump',
                                   description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--config', default='argenseg:variant=8b', help='ARGenSeg config spec')
  parser.add_argument('--mesh', default='data=1,fsdp=4,tensor=2',
                      help='mesh axis sizes, e.g. data=1,fsdp=4,tensor=2 (any size)')
  parser.add_argument('--out', required=True, help='JSON file to write')
  args = parser.parse_args(argv)
  mesh = sharding.abstract_mesh(**sharding.parse_mesh(args.mesh))
  table = spec_table(abstract_model(load_config(args.config)), mesh)
  out = pathlib.Path(args.out)
  out.parent.mkdir(parents=True, exist_ok=True)
  out.write_text(to_json(table))
  print(f'{len(table)} parameter specs -> {out}')
  return 0


if __name__ == '__main__':
  sys.exit(main())
