"""Comparison of our arrays with reference arrays under a fixture's per-output rules."""

import dataclasses

import numpy as np

from argenseg_jax.parity.fixture import CHECKED_RULES, rule_kind


@dataclasses.dataclass
class Row:
  name: str
  rule: str
  shape: str
  max_abs: float | None
  max_rel: float | None
  status: str  # 'ok', 'FAIL', 'info', 'skipped'
  note: str = ''

  @property
  def failed(self) -> bool:
    return self.status == 'FAIL'


def _rule_text(rule) -> str:
  return f'atol={rule["atol"]:g} rtol={rule["rtol"]:g}' if isinstance(rule, dict) else rule


def compare(name: str, rule, ours, ref: np.ndarray) -> Row:
  """One output: errors and pass/fail (diagnostic/trace outputs never fail)."""
  kind = rule_kind(rule)
  checked = kind in CHECKED_RULES
  row = Row(name, _rule_text(rule), str(list(ref.shape)), None, None,
            'ok' if checked else 'info')
  if ours is None:
    if checked:
      row.status, row.note = 'FAIL', 'not produced'
    else:
      row.note = 'not produced (not required)'
    return row
  ours = np.asarray(ours)
  if ours.shape != ref.shape:
    row.note = f'shape {list(ours.shape)} != reference'
    row.status = 'FAIL' if checked else 'info'
    return row
  diff = np.abs(ours.astype(np.float64) - ref.astype(np.float64))
  row.max_abs = float(diff.max(initial=0.0))
  scale = np.abs(ref.astype(np.float64))
  # Relative error only where the reference is not tiny (floor: atol, or 1 for exact).
  floor = max(rule['atol'], 1e-12) if kind == 'tolerance' else 1.0
  row.max_rel = float(np.max(diff / np.maximum(scale, floor), initial=0.0))
  if kind == 'exact':
    mismatched = int(np.count_nonzero(ours != ref))
    if mismatched:
      row.status, row.note = 'FAIL', f'{mismatched} of {ref.size} differ'
  elif kind == 'tolerance':
    bad = diff > rule['atol'] + rule['rtol'] * scale
    if bad.any():
      row.status, row.note = 'FAIL', f'{int(bad.sum())} of {ref.size} outside tolerance'
  return row


def format_table(rows: list[Row]) -> str:
  def fmt(x):
    return '-' if x is None else f'{x:.3g}'
  header = ('output', 'rule', 'shape', 'max-abs', 'max-rel', 'status')
  lines = [(r.name, r.rule, r.shape, fmt(r.max_abs), fmt(r.max_rel),
            r.status + (f' ({r.note})' if r.note else '')) for r in rows]
  widths = [max(len(x[i]) for x in [header] + lines) for i in range(len(header) - 1)]
  out = []
  for cells in [header] + lines:
    out.append('  '.join(c.ljust(w) for c, w in zip(cells, widths)) + '  ' + cells[-1])
  return '\n'.join(out)
