"""The layers import downwards only: the library (`argenseg_jax`) never imports the data
code (`data_pipelines`), except the command line, where the two meet; the data code never
imports the command line; nothing imports the tests or the benchmarks. Every import
counts, including those inside functions."""

import ast
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
# package -> the top-level packages its modules must not import
FORBIDDEN = {'argenseg_jax': ('data_pipelines', 'configs', 'tests', 'benchmarks'),
             'data_pipelines': ('argenseg_jax.cli', 'configs', 'tests', 'benchmarks')}
MEETING_POINT = 'argenseg_jax.cli'  # may import both


def imported_modules(path: pathlib.Path) -> list[tuple[int, str]]:
  """`(line, module)` of every absolute import in a Python file, at any depth."""
  found = []
  for node in ast.walk(ast.parse(path.read_text(), str(path))):
    if isinstance(node, ast.Import):
      found += [(node.lineno, alias.name) for alias in node.names]
    elif isinstance(node, ast.ImportFrom) and node.level == 0:
      found += [(node.lineno, f'{node.module}.{alias.name}') for alias in node.names]
  return found


def violations(package: str) -> list[str]:
  """`FILE:LINE: module` for each import of `package` in the wrong direction."""
  bad = []
  for path in sorted((ROOT / package).rglob('*.py')):
    module = '.'.join(path.relative_to(ROOT).with_suffix('').parts)
    if module == MEETING_POINT or module.startswith(MEETING_POINT + '.'):
      continue
    for line, name in imported_modules(path):
      if any(name == f or name.startswith(f + '.') for f in FORBIDDEN[package]):
        bad.append(f'{path.relative_to(ROOT)}:{line}: {name}')
  return bad


@pytest.mark.parametrize('package', sorted(FORBIDDEN))
def test_imports_point_downwards(package):
  assert violations(package) == []


def test_the_check_sees_imports_inside_functions(tmp_path, monkeypatch):
  package = tmp_path / 'argenseg_jax'
  package.mkdir()
  (package / 'fine.py').write_text('import numpy\nfrom argenseg_jax import sampler\n')
  (package / 'cycle.py').write_text('def f():\n  from data_pipelines import data_spec\n')
  (package / 'cli').mkdir()
  (package / 'cli' / 'run.py').write_text('from data_pipelines import data_spec\n')
  monkeypatch.setitem(globals(), 'ROOT', tmp_path)
  assert violations('argenseg_jax') == ['argenseg_jax/cycle.py:2: data_pipelines.data_spec']


FRESH_IMPORTS = '''
import importlib, sys, traceback
failed = []
for name in sys.argv[1:]:
  for cached in [m for m in sys.modules if m.split('.')[0] in ('argenseg_jax', 'data_pipelines')]:
    del sys.modules[cached]
  try:
    importlib.import_module(name)
  except Exception:
    failed.append(name + ': ' + traceback.format_exc().strip().splitlines()[-1])
print('\\n'.join(failed))
sys.exit(1 if failed else 0)
'''


def test_every_module_imports_first():
  """Each module imports on its own, before any other of ours (an import cycle fails
  only in some orders; the test modules import in one order)."""
  modules = ['.'.join(p.relative_to(ROOT).with_suffix('').parts).removesuffix('.__init__')
             for package in FORBIDDEN for p in sorted((ROOT / package).rglob('*.py'))
             if p.name != '__main__.py']
  run = subprocess.run([sys.executable, '-c', FRESH_IMPORTS, *modules], capture_output=True,
                       text=True, cwd=ROOT, check=False)
  assert run.returncode == 0, run.stdout + run.stderr[-2000:]
