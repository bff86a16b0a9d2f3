"""Referring-segmentation metrics as mergeable host-side counters (numpy only).

Per sample (foreground of bool `[H, W]` masks):
  I = |pred & gt|, U = |pred| + |gt| - I, IoU = I / U, and IoU = 1.0 when U == 0 (empty
  GT and empty prediction: a perfect no-target hit, as the original evaluation).
Aggregates (`MetricAccumulator.summary`):
  cIoU = sum I / sum U; gIoU = mean per-sample IoU over ALL samples. The original only
    averaged rank 0's shard for gIoU (spec 7.1, quirk 11); merging every host's counters
    fixes that.
  precision@t = share of samples with IoU > t (strictly: IoU == t is a miss; LAVT-style
    scripts count IoU >= t, which differs only for IoUs exactly on a threshold).
  N-acc = no-target samples (empty GT) predicted empty / no-target samples; T-acc = target
    samples predicted non-empty / target samples; "empty" = 0 foreground pixels. None
    when the data set holds no sample of that kind.
  box_acc@0.5 = share of samples whose predicted-mask box has IoU > 0.5 with the GT-mask
    box; boxes are pixel-inclusive, both masks empty is a hit, one empty is a miss.
  Any ratio with a zero denominator (no samples, all unions empty) is None.
"""

import dataclasses

import numpy as np

THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.9)
BOX_THRESHOLD = 0.5


def intersection_union(pred: np.ndarray, gt: np.ndarray) -> tuple[int, int]:
  """Foreground intersection and union of bool `[H, W]` masks of the same shape."""
  if pred.shape != gt.shape:
    raise ValueError(f'prediction {pred.shape} and ground truth {gt.shape} differ in shape.')
  pred, gt = pred.astype(bool), gt.astype(bool)
  inter = int(np.count_nonzero(pred & gt))
  return inter, int(np.count_nonzero(pred)) + int(np.count_nonzero(gt)) - inter


def iou(inter: int, union: int) -> float:
  """`inter / union`, 1.0 for an empty union (both masks empty)."""
  return 1.0 if union == 0 else inter / union


def mask_box(mask: np.ndarray) -> tuple[int, int, int, int] | None:
  """`(x0, y0, x1, y1)` of the foreground, end-exclusive (a 1-pixel mask has area 1);
  None for an empty mask."""
  ys, xs = np.nonzero(mask)
  if not len(ys):
    return None
  return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def _area(box: tuple) -> int:
  return (box[2] - box[0]) * (box[3] - box[1])


def box_iou(a: tuple | None, b: tuple | None) -> float:
  """IoU of two `mask_box` boxes: 1.0 if both are None, 0.0 if only one is."""
  if a is None or b is None:
    return float(a is None and b is None)
  w = min(a[2], b[2]) - max(a[0], b[0])
  h = min(a[3], b[3]) - max(a[1], b[1])
  inter = max(w, 0) * max(h, 0)
  return inter / (_area(a) + _area(b) - inter)


@dataclasses.dataclass(frozen=True)
class SampleScore:
  """The numbers one (prediction, GT) pair contributes."""
  inter: int
  union: int
  iou: float
  box_iou: float
  pred_empty: bool
  gt_empty: bool


def score(pred: np.ndarray, gt: np.ndarray) -> SampleScore:
  """Scores bool `[H, W]` prediction against bool `[H, W]` ground truth."""
  inter, union = intersection_union(pred, gt)
  return SampleScore(inter=inter, union=union, iou=iou(inter, union),
                     box_iou=box_iou(mask_box(pred), mask_box(gt)),
                     pred_empty=not pred.any(), gt_empty=not gt.any())


def _ratio(a: float, b: float) -> float | None:
  return a / b if b else None


# Counter layout of `MetricAccumulator.to_array` (float64 [len(FIELDS) + len(THRESHOLDS)]).
FIELDS = ('samples', 'inter', 'union', 'iou_sum', 'box_hits', 'no_target',
          'no_target_hits', 'target', 'target_hits')


@dataclasses.dataclass
class MetricAccumulator:
  """Sums over samples; `a.merge(b)` equals one accumulator fed both sample sets."""
  samples: int = 0
  inter: int = 0
  union: int = 0
  iou_sum: float = 0.0
  box_hits: int = 0
  no_target: int = 0        # samples with an empty GT
  no_target_hits: int = 0   # ... predicted empty
  target: int = 0           # samples with a non-empty GT
  target_hits: int = 0      # ... predicted non-empty
  precision_hits: np.ndarray = dataclasses.field(
      default_factory=lambda: np.zeros(len(THRESHOLDS), np.int64))

  def add(self, s: SampleScore) -> None:
    self.samples += 1
    self.inter += s.inter
    self.union += s.union
    self.iou_sum += s.iou
    self.box_hits += s.box_iou > BOX_THRESHOLD
    if s.gt_empty:
      self.no_target += 1
      self.no_target_hits += s.pred_empty
    else:
      self.target += 1
      self.target_hits += not s.pred_empty
    self.precision_hits = self.precision_hits + (s.iou > np.asarray(THRESHOLDS))

  def to_array(self) -> np.ndarray:
    """The counters as float64 `[len(FIELDS) + len(THRESHOLDS)]`, for a host all-gather
    (exact for counts below 2**53)."""
    return np.concatenate([np.array([getattr(self, f) for f in FIELDS], np.float64),
                           self.precision_hits.astype(np.float64)])

  @classmethod
  def from_array(cls, x: np.ndarray) -> 'MetricAccumulator':
    """Inverse of `to_array`; a `[P, N]` stack of per-host arrays is summed first."""
    x = np.asarray(x, np.float64)
    x = x.reshape(-1, x.shape[-1]).sum(0)
    kw = {f: (float(v) if f == 'iou_sum' else int(round(v))) for f, v in zip(FIELDS, x)}
    return cls(**kw, precision_hits=np.rint(x[len(FIELDS):]).astype(np.int64))

  def merge(self, other: 'MetricAccumulator') -> 'MetricAccumulator':
    return MetricAccumulator.from_array(np.stack([self.to_array(), other.to_array()]))

  def summary(self) -> dict[str, float | None]:
    """`cIoU, gIoU, precision@t, box_acc@0.5, N-acc, T-acc` (None where undefined)."""
    out = {'cIoU': _ratio(self.inter, self.union), 'gIoU': _ratio(self.iou_sum, self.samples)}
    for t, hits in zip(THRESHOLDS, self.precision_hits):
      out[f'precision@{t}'] = _ratio(int(hits), self.samples)
    out[f'box_acc@{BOX_THRESHOLD}'] = _ratio(self.box_hits, self.samples)
    out['N-acc'] = _ratio(self.no_target_hits, self.no_target)
    out['T-acc'] = _ratio(self.target_hits, self.target)
    return out
