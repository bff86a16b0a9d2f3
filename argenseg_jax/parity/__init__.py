"""Parity checker: runs our model on a golden fixture and compares every output.

  python -m argenseg_jax.parity FIXTURE_DIR [--only PREFIX,...]

Prints a table of max-abs / max-rel error per output and exits non-zero when an
`exact` or tolerance output is outside its rule or cannot be produced, or when the
fixture's kind is not implemented.
"""

import argparse
import dataclasses
import sys

from argenseg_jax.parity.compare import Row, compare, format_table
from argenseg_jax.parity.fixture import load_fixture


@dataclasses.dataclass
class Report:
  kind: str
  rows: list[Row]

  @property
  def passed(self) -> bool:
    return not any(r.failed for r in self.rows)


def check(fixture_dir, only: list[str] | None = None,
          exclude: list[str] | None = None) -> Report:
  """Runs the fixture's kind on its weights and inputs; `only` keeps outputs whose names
  start with one of these prefixes, `exclude` drops those starting with one of its
  prefixes (both reported as skipped)."""
  from argenseg_jax.parity.kinds import get_runner  # pylint: disable=import-outside-toplevel
  fixture = load_fixture(fixture_dir)
  runner = get_runner(fixture.kind)

  def wanted(name: str) -> bool:
    return not only or any(name.startswith(p) or p.startswith(name) for p in only)

  def selected(name: str) -> bool:
    return ((not only or any(name.startswith(p) for p in only))
            and not any(name.startswith(p) for p in exclude or ()))

  ours = runner(fixture, wanted)
  rows = []
  for name in sorted(fixture.rules):
    if name not in fixture.outputs:
      raise ValueError(f'{fixture.path}: fixture.json names output {name!r} '
                       'that outputs.npz lacks.')
    if selected(name):
      rows.append(compare(name, fixture.rules[name], ours.get(name), fixture.outputs[name]))
    else:
      rows.append(Row(name, '-', str(list(fixture.outputs[name].shape)), None, None,
                      'skipped', 'not selected'))
  if not any(r.status != 'skipped' for r in rows):
    raise ValueError(f'--only / --exclude leave no output of {fixture.path} to check.')
  return Report(fixture.kind, rows)


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(
      prog='python -m argenseg_jax.parity',
      description='Compare our models with reference outputs of the original PyTorch code.')
  parser.add_argument('fixture_dir', help='folder with fixture.json, config.json, weights, '
                      'inputs.npz, outputs.npz (see shared/golden/FORMAT.md)')
  parser.add_argument('--only', default='',
                      help='comma-separated output-name prefixes to check (others skipped)')
  parser.add_argument('--exclude', default='',
                      help='comma-separated output-name prefixes not to check')
  args = parser.parse_args(argv)
  only = [p for p in args.only.split(',') if p]
  exclude = [p for p in args.exclude.split(',') if p]
  try:
    report = check(args.fixture_dir, only, exclude)
  except (FileNotFoundError, NotImplementedError, ValueError) as e:
    print(f'parity: {e}', file=sys.stderr)
    return 2
  print(f'fixture {args.fixture_dir} (kind {report.kind})')
  print(format_table(report.rows))
  skipped = [r.name for r in report.rows if r.status == 'skipped']
  if skipped:
    print(f'skipped {len(skipped)} output(s) not selected by --only/--exclude: '
          f'{", ".join(skipped)}')
  failed = [r.name for r in report.rows if r.failed]
  print(f'FAILED: {", ".join(failed)}' if failed else 'PASSED')
  return 1 if failed else 0
