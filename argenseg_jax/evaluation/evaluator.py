"""Referring-segmentation evaluation of a `Segmenter` over a source of `RefSample`s.

  report = evaluate(Segmenter.load(ckpt, batch_size=8),
                    data_spec.open_source('custom:val.jsonl'), batch_size=8, out_dir='out/eval')
  report['metrics']['cIoU']

Protocols: 'object' asks one question per sample with all its sentences joined, as the
original evaluation of PSALM-format files (spec 6.5, quirk 12); 'sentence' asks one
question per sentence. The GT is the union of the sample's masks; the prediction is the
answer's first mask (no mask -> empty). A conversation sample with one question and one
mask (of any reader: `custom:`, `psalm:`, `meta:`) asks its question as written, under
either protocol. Other samples without sentences (conversations with several questions
or masks) are skipped and counted (`skipped_no_sentences`), like the original's filter
on empty instruction lists.

Multi-host: process p evaluates the even index range p of the samples on its own model
replica (no collective inside the loop); the counters and per-query rows are then
all-gathered and process 0 writes `report.json` and the overlays.
"""

import dataclasses
import datetime
import json
import time
from typing import Iterator, Sequence

import jax
import numpy as np
from etils import epath
from jax.experimental import multihost_utils
from PIL import Image

from argenseg_jax import chat_template, image_io, user_input
from argenseg_jax.checkpoints import atomic
from argenseg_jax.evaluation import metrics
from argenseg_jax.progress import Progress
from argenseg_jax.ref_sample import RefSample

PROTOCOLS = ('object', 'sentence')
# Columns of the per-query rows gathered across hosts.
ROW = ('index', 'sentence', 'inter', 'union', 'iou', 'box_iou', 'no_mask', 'pred_empty',
       'gt_empty', 'group')


@dataclasses.dataclass(frozen=True)
class Query:
  index: int            # the sample's index in the source
  sentence: int         # the sentence's index; -1 = all sentences (object protocol)
  prompt: str
  image: Image.Image
  gt: np.ndarray        # bool [H, W], the union of the sample's masks
  origin: str
  group: int = -1       # index of the sample's group in the source's `groups` (-1: none)


def shard_range(n: int, index: int, count: int) -> range:
  """Process `index` of `count`'s even share of `range(n)` (sizes differ by <= 1)."""
  return range(index * n // count, (index + 1) * n // count)


def ground_truth(sample: RefSample, size: tuple[int, int]) -> np.ndarray:
  """The union of the sample's masks, bool `[H, W]` for an image of `size = (W, H)`."""
  gt = np.zeros(size[::-1], bool)
  for mask in sample.masks:
    if mask.shape != gt.shape:
      raise ValueError(f'{sample.origin}: a mask is {mask.shape[1]}x{mask.shape[0]} but '
                       f'the image is {size[0]}x{size[1]}.')
    gt |= mask.astype(bool)
  return gt


def conversation_question(sample: RefSample) -> str | None:
  """The question of a one-question conversation sample with one mask (a meta file's
  referring, panoptic or semantic entry), asked as written; None otherwise."""
  turns = sample.conversation or []
  if (sample.sentences or len(sample.masks) != 1 or len(turns) != 2
      or [t['from'] for t in turns] != ['human', 'gpt']):
    return None
  return turns[0]['value']


def sample_queries(sample: RefSample, index: int, protocol: str,
                   groups: Sequence[str] = ()) -> list[Query]:
  """The questions of one sample under `protocol` (a one-question conversation: that
  question; none if there is neither); `groups`: the source's group names, which
  `sample.group` indexes."""
  if sample.group and sample.group not in groups:
    raise ValueError(f'{sample.origin}: group {sample.group!r} is not one of the source\'s '
                     f'groups {list(groups)}.')
  group = list(groups).index(sample.group) if sample.group else -1
  question = conversation_question(sample)
  if not (sample.sentences or question):
    return []
  image = image_io.as_rgb(sample.image)
  gt = ground_truth(sample, image.size)
  if question:
    prompts = [(-1, question)]
  elif protocol == 'object':
    prompts = [(-1, chat_template.Referring(tuple(sample.sentences)))]
  else:
    prompts = [(k, chat_template.Referring((s,))) for k, s in enumerate(sample.sentences)]
  return [Query(index, k, p, image, gt, sample.origin, group) for k, p in prompts]


def batches(source: Sequence[RefSample], indices: range, protocol: str, batch_size: int,
            skipped: list[int]) -> Iterator[tuple[list[Query], int]]:
  """`(queries, samples read)` in batches of <= batch_size; appends sentence-less
  sample indices to `skipped`."""
  batch, read = [], 0
  for i in indices:
    queries = sample_queries(source[i], i, protocol, getattr(source, 'groups', ()))
    read += 1
    if not queries:
      skipped.append(i)
    for q in queries:
      batch.append(q)
      if len(batch) == batch_size:
        yield batch, read
        batch, read = [], 0
  if batch or read:
    yield batch, read


def predict(segmenter, batch: list[Query]) -> list[np.ndarray | None]:
  """First answer mask per query (None: no mask)."""
  results = segmenter.segment([q.image for q in batch], [q.prompt for q in batch])
  return [r.masks[0] if r.masks else None for r in results]


def _gather(acc: metrics.MetricAccumulator, rows: np.ndarray, counts: np.ndarray):
  """Sums counters and concatenates `[n, len(ROW)]` rows over processes."""
  if jax.process_count() == 1:
    return acc, rows, counts
  acc = metrics.MetricAccumulator.from_array(multihost_utils.process_allgather(acc.to_array()))
  sizes = multihost_utils.process_allgather(np.array(len(rows)))
  padded = np.zeros((int(sizes.max()), len(ROW)))
  padded[:len(rows)] = rows
  gathered = multihost_utils.process_allgather(padded)
  rows = np.concatenate([g[:n] for g, n in zip(gathered, sizes)])
  return acc, rows, multihost_utils.process_allgather(counts).sum(0)


def save_overlay(path: epath.Path, q: Query, pred: np.ndarray) -> None:
  """`[ground truth | prediction]`, each outlined on the image, uint8 `[H, 2W, 3]`."""
  both = np.concatenate([image_io.overlay(q.image, q.gt),
                         image_io.overlay(q.image, pred)], axis=1)
  atomic.write_atomic(path, lambda tmp: image_io.write_png(tmp, both))


def _row(q: Query, s: metrics.SampleScore, no_mask: bool) -> list[float]:
  return [q.index, q.sentence, s.inter, s.union, s.iou, s.box_iou, no_mask, s.pred_empty,
          s.gt_empty, q.group]


def per_group(rows: np.ndarray, groups: Sequence[str]) -> dict[str, dict]:
  """`{group: {'queries': n, **metrics}}` for each group with queries, from all rows."""
  out = {}
  for k, name in enumerate(groups):
    acc = metrics.MetricAccumulator()
    for r in rows[rows[:, ROW.index('group')] == k]:
      d = dict(zip(ROW, r.tolist()))
      acc.add(metrics.SampleScore(int(d['inter']), int(d['union']), d['iou'], d['box_iou'],
                                  bool(d['pred_empty']), bool(d['gt_empty'])))
    if acc.samples:
      out[name] = {'queries': acc.samples, **acc.summary()}
  return out


def _per_query(rows: np.ndarray) -> list[dict]:
  out = []
  for r in rows[np.lexsort((rows[:, 1], rows[:, 0]))]:
    d = dict(zip(ROW, r.tolist()))
    out.append({'index': int(d['index']), 'sentence': int(d['sentence']),
                'inter': int(d['inter']), 'union': int(d['union']), 'iou': d['iou'],
                'box_iou': d['box_iou'], 'no_mask': bool(d['no_mask'])})
  return out


def evaluate_shard(segmenter, source: Sequence[RefSample], indices: range, *, protocol: str,
                   batch_size: int, out_dir: epath.Path, num_overlays: int,
                   progress: bool):
  """This process's part: `(accumulator, rows [n, len(ROW)], skipped, overlays)`."""
  acc, rows, skipped, overlays = metrics.MetricAccumulator(), [], [], []
  bar = Progress(len(indices), enabled=progress)
  for batch, read in batches(source, indices, protocol, batch_size, skipped):
    for q, pred in zip(batch, predict(segmenter, batch)):
      mask = pred if pred is not None else np.zeros_like(q.gt)
      s = metrics.score(mask, q.gt)
      acc.add(s)
      rows.append(_row(q, s, pred is None))
      if len(overlays) < num_overlays:
        path = out_dir / f'overlay_{len(overlays):02d}_sample{q.index}.png'
        save_overlay(path, q, mask)
        overlays.append({'index': q.index, 'sentence': q.sentence, 'origin': q.origin,
                         'iou': s.iou, 'path': path.name})
    bar.update(read)
  bar.close()
  return acc, np.array(rows, np.float64).reshape(-1, len(ROW)), len(skipped), overlays


def evaluate(segmenter, source: Sequence[RefSample], *, batch_size: int,
             protocol: str = 'object', out_dir, num_overlays: int = 4,
             max_samples: int | None = None, progress: bool = True,
             checkpoint: str | None = None, data: str | None = None) -> dict:
  """Runs `segmenter.segment(images, prompts)` over `source` and returns the report,
  also written (process 0) to `out_dir/report.json` beside `num_overlays` overlay PNGs."""
  if protocol not in PROTOCOLS:
    raise ValueError(f'protocol must be one of {PROTOCOLS}, got {protocol!r}.')
  if batch_size < 1:
    raise ValueError(f'batch_size must be >= 1, got {batch_size}.')
  n = len(source) if max_samples is None else min(len(source), max_samples)
  pid, pcount = jax.process_index(), jax.process_count()
  indices = shard_range(n, pid, pcount)
  out_dir = user_input.folder_path(user_input.path(out_dir, absolute=True), 'out_dir')
  started, t0 = datetime.datetime.now(datetime.timezone.utc), time.perf_counter()
  acc, rows, skipped, overlays = evaluate_shard(
      segmenter, source, indices, protocol=protocol, batch_size=batch_size, out_dir=out_dir,
      num_overlays=num_overlays if pid == 0 else 0, progress=progress and pid == 0)
  acc, rows, counts = _gather(acc, rows, np.array([len(indices), skipped]))
  if not acc.samples:
    raise ValueError(f'{data or "the data"}: none of its {int(counts[0])} samples has a '
                     'sentence to ask: nothing to evaluate.')
  seconds = time.perf_counter() - t0
  report = {
      'protocol': protocol, 'checkpoint': checkpoint, 'data': data,
      'metrics': acc.summary(),
      'counts': {'samples': int(counts[0]), 'skipped_no_sentences': int(counts[1]),
                 'queries': acc.samples, 'target': acc.target, 'no_target': acc.no_target,
                 'no_mask_answers': int(rows[:, ROW.index('no_mask')].sum()),
                 'processes': pcount},
      'time': {'started': started.isoformat(timespec='seconds'), 'seconds': round(seconds, 3),
               'queries_per_second': round(acc.samples / seconds, 3) if seconds else None},
      'overlays': overlays,
      'per_group': per_group(rows, getattr(source, 'groups', ())),
      'per_query': _per_query(rows),
  }
  if pid == 0:
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic.write_atomic(out_dir / 'report.json',
                  lambda tmp: tmp.write_text(json.dumps(report, indent=1) + '\n'))
  return report


def _cells(values: dict) -> str:
  return '  '.join(f'{k} {"-" if v is None else f"{100 * v:.2f}"}' for k, v in values.items())


def format_summary(report: dict) -> str:
  """The counts and the metrics (percentages, '-' where undefined), then a line per
  group of the source (if it has groups)."""
  c = report['counts']
  head = (f'{report["protocol"]} protocol: {c["queries"]} queries over {c["samples"]} '
          f'samples ({c["skipped_no_sentences"]} without a question skipped, '
          f'{c["no_mask_answers"]} answers without a mask)')
  lines = [head, _cells(report['metrics'])]
  for name, values in report.get('per_group', {}).items():
    values = dict(values)
    lines.append(f'  {name} ({values.pop("queries")} queries): {_cells(values)}')
  return '\n'.join(lines)
