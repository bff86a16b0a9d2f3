"""Evaluation metrics against hand-computed cases."""

import numpy as np
import pytest

from argenseg_jax.evaluation import metrics


def _mask(shape, *pixels):
  """bool `shape` with the given `(y, x)` pixels set."""
  m = np.zeros(shape, bool)
  for y, x in pixels:
    m[y, x] = True
  return m


EMPTY = np.zeros((4, 4), bool)
TOP = _mask((4, 4), *[(y, x) for y in (0, 1) for x in range(4)])      # rows 0-1: 8 px
MIDDLE = _mask((4, 4), *[(y, x) for y in (1, 2) for x in range(4)])   # rows 1-2: 8 px
L_SHAPE = _mask((4, 4), (0, 0), (1, 0), (2, 0), (2, 1), (2, 2))       # box 3x3, 5 px
SQUARE3 = _mask((4, 4), *[(y, x) for y in range(3) for x in range(3)])
BLOB = _mask((4, 4), (3, 1), (3, 2), (3, 3))

# (name, pred, gt, inter, union, iou, box_iou)
CASES = [
    ('both empty', EMPTY, EMPTY, 0, 0, 1.0, 1.0),
    ('empty gt', BLOB, EMPTY, 0, 3, 0.0, 0.0),
    ('empty prediction', EMPTY, TOP, 0, 8, 0.0, 0.0),
    ('half rows overlap', TOP, MIDDLE, 4, 12, 1 / 3, 1 / 3),   # boxes 4x2 vs 4x2, 4x1 shared
    ('square over L', SQUARE3, L_SHAPE, 5, 9, 5 / 9, 1.0),     # same 3x3 box
    ('equal', MIDDLE, MIDDLE, 8, 8, 1.0, 1.0),
]


@pytest.mark.parametrize('name,pred,gt,inter,union,iou,box', CASES, ids=[c[0] for c in CASES])
def test_score(name, pred, gt, inter, union, iou, box):
  del name
  s = metrics.score(pred, gt)
  assert (s.inter, s.union) == (inter, union)
  assert s.iou == pytest.approx(iou) and s.box_iou == pytest.approx(box)
  assert s.pred_empty == (not pred.any()) and s.gt_empty == (not gt.any())


def test_boxes_are_pixel_inclusive():
  assert metrics.mask_box(_mask((5, 6), (1, 2))) == (2, 1, 3, 2)            # area 1
  assert metrics.mask_box(L_SHAPE) == (0, 0, 3, 3)
  assert metrics.mask_box(EMPTY) is None
  # (0,0,2,2) vs (1,1,4,3): overlap 1x1, areas 4 and 6 -> 1/9
  assert metrics.box_iou((0, 0, 2, 2), (1, 1, 4, 3)) == pytest.approx(1 / 9)
  assert metrics.box_iou((0, 0, 1, 1), (2, 2, 3, 3)) == 0.0
  assert metrics.box_iou(None, None) == 1.0 and metrics.box_iou(None, (0, 0, 1, 1)) == 0.0


def test_shape_mismatch_is_refused():
  with pytest.raises(ValueError, match='shape'):
    metrics.intersection_union(np.zeros((2, 3), bool), np.zeros((3, 2), bool))


def _accumulate(cases):
  acc = metrics.MetricAccumulator()
  for _, pred, gt, *_ in cases:
    acc.add(metrics.score(pred, gt))
  return acc


def test_summary_by_hand():
  s = _accumulate(CASES).summary()
  assert s['cIoU'] == pytest.approx((4 + 5 + 8) / (3 + 8 + 12 + 9 + 8))
  assert s['gIoU'] == pytest.approx((1 + 0 + 0 + 1 / 3 + 5 / 9 + 1) / 6)
  # IoUs 1, 0, 0, 1/3, 5/9, 1: above 0.5 -> 3; above 0.6..0.9 -> 2 (both-empty and equal)
  assert s['precision@0.5'] == pytest.approx(3 / 6)
  for t in (0.6, 0.7, 0.8, 0.9):
    assert s[f'precision@{t}'] == pytest.approx(2 / 6)
  assert s['box_acc@0.5'] == pytest.approx(3 / 6)             # both empty, square/L, equal
  assert s['N-acc'] == pytest.approx(1 / 2)                   # empty GTs: 1 of 2 predicted empty
  assert s['T-acc'] == pytest.approx(3 / 4)                   # 3 of 4 targets predicted non-empty


def test_threshold_is_strict():
  half = _mask((1, 4), (0, 0), (0, 1))                        # 2 px inside a 4 px GT: IoU 1/2
  acc = metrics.MetricAccumulator()
  acc.add(metrics.score(half, np.ones((1, 4), bool)))
  s = acc.summary()
  assert s['gIoU'] == 0.5 and s['precision@0.5'] == 0.0 and s['box_acc@0.5'] == 0.0


def test_undefined_ratios_are_none():
  s = metrics.MetricAccumulator().summary()
  assert all(v is None for v in s.values())
  only_targets = _accumulate(CASES[3:]).summary()
  assert only_targets['N-acc'] is None and only_targets['T-acc'] == 1.0


def test_merge_equals_one_pass():
  whole = _accumulate(CASES)
  merged = _accumulate(CASES[:2]).merge(_accumulate(CASES[2:]))
  np.testing.assert_allclose(merged.to_array(), whole.to_array())
  assert merged.summary() == pytest.approx(whole.summary())
  # a host all-gather stacks [P, N]; from_array sums it
  stacked = np.stack([_accumulate(CASES[i::3]).to_array() for i in range(3)])
  assert metrics.MetricAccumulator.from_array(stacked).summary() == pytest.approx(
      whole.summary())
