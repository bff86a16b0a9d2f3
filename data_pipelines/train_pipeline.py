"""The grain training chain: `RefSample`s -> padded, bucketed batches of model inputs.

  source -> seeded shuffle (new order every epoch) -> repeat -> shard by process
  -> encode (image tile, masks -> VQ-VAE inputs, template, `<mask>` expansion, labels)
  -> drop too-long examples and those whose text spells a special token (counted, logged
  with their origin) -> batch with padding to the smallest length bucket that fits
  -> optional multi-process prefetch.

A batch (numpy, per process) holds, for `B` examples with at most `M` masks each:
  ids, labels `[B, L]` int32 (padding: `pad_id` / -100), token_mask `[B, L]` bool,
  pixels `[B, S, S, 3]` float32 (one ImageNet-normalised tile per example, like the
  original's `max_dynamic_patch 1`), image_flags `[B]` (0: a text-only example), masks
  `[B * M, R, R, 3]` float32 in [-1, 1] (example-major; unused slots hold a white dummy),
  mask_flags `[B * M]` (all 0 for understanding and text-only examples: text loss only).
"""

import dataclasses
import functools
import logging
import signal

import grain
import jax
import numpy as np
from PIL import Image

from argenseg_jax import chat_template, image_io
from argenseg_jax.example_spec import ExampleSpec
from argenseg_jax.image_transforms import normalize_tile
from argenseg_jax.mask_transforms import mask_to_vae_input
from argenseg_jax.ref_sample import RefSample
from argenseg_jax.tokenizer import Tokenizer
from data_pipelines import data_spec, mixture, synthetic_masks

# The tile of a text-only example (the original's blank white image); its image_flags is 0,
# so the model drops its image tokens, and its text holds no `<image>`.
BLANK_IMAGE = Image.new('RGB', (224, 224), (255, 255, 255))
BATCH_KEYS = ('ids', 'labels', 'token_mask', 'pixels', 'image_flags', 'masks', 'mask_flags')


class EncodeExample(grain.transforms.Map):
  """`RefSample` -> dict of numpy arrays (one example), or None (skipped) when it is too
  long or its text spells a special token (`chat_template.SpecialTokenError`)."""

  def __init__(self, tokenizer: Tokenizer, spec: ExampleSpec):
    self.tokenizer = tokenizer
    self.spec = spec
    self.skipped = 0  # per worker process
    self.consecutive_skips = 0

  def _skip(self, sample: RefSample, error: ValueError) -> None:
    self.skipped += 1
    self.consecutive_skips += 1
    if self.consecutive_skips >= self.spec.max_consecutive_skips:
      fix = ('remove the special tokens from the data'
             if isinstance(error, chat_template.SpecialTokenError) else
             f'raise the length buckets (the largest is {self.spec.max_length})')
      raise ValueError(f'{self.consecutive_skips} samples in a row were skipped (last: '
                       f'{sample.origin}: {error}); {fix}.')
    logging.warning('skipping %s (%d skipped so far by this reader): %s', sample.origin,
                    self.skipped, error)

  def map(self, sample: RefSample) -> dict | None:
    spec = self.spec
    conversation = sample.conversation or (
        chat_template.referring_dialogue(sample.dialogue, spec.question_style) if sample.dialogue
        else chat_template.referring_conversation(sample.sentences, spec.question_style))
    wanted = sum(turn['value'].count(chat_template.MASK) for turn in conversation
                 if turn['from'] == 'gpt')
    if wanted != len(sample.masks):
      raise ValueError(f'{sample.origin}: the answer holds {wanted} <mask> but the sample '
                       f'has {len(sample.masks)} masks.')
    if wanted > spec.max_masks:
      raise ValueError(f'{sample.origin}: {wanted} masks, more than max_masks='
                       f'{spec.max_masks}; raise it in the data config.')
    try:
      if not sample.conversation:
        for sentence in sample.dialogue or sample.sentences:
          chat_template.check_text(self.tokenizer, sentence, 'the expression')
      example = chat_template.training_example(
          self.tokenizer, conversation, num_tiles=int(sample.image is not None),
          tokens_per_tile=spec.image_tokens,
          system=spec.system_prompt, mask_tokens=spec.mask_tokens, max_length=spec.max_length)
    except chat_template.SpecialTokenError as e:
      return self._skip(sample, e)
    except ValueError as e:
      if 'over the limit' not in str(e):
        raise ValueError(f'{sample.origin}: {e}') from e
      return self._skip(sample, e)
    self.consecutive_skips = 0
    image = image_io.as_rgb(sample.image) if sample.image is not None else BLANK_IMAGE
    masks = np.ones((spec.max_masks, spec.mask_resolution, spec.mask_resolution, 3), np.float32)
    for k, mask in enumerate(sample.masks):
      masks[k] = mask_to_vae_input(np.asarray(mask, np.uint8) * np.uint8(255),
                                   spec.mask_resolution)
    flags = (np.arange(spec.max_masks) < len(sample.masks)).astype(np.int32)
    return dict(ids=example.ids, labels=example.labels,
                pixels=normalize_tile(image, spec.image_size),
                image_flag=np.int32(sample.image is not None), masks=masks, mask_flags=flags)


def _is_example(example) -> bool:
  return example is not None


def bucket_length(length: int, buckets) -> int:
  """The smallest bucket holding `length` tokens."""
  for b in buckets:
    if length <= b:
      return b
  raise ValueError(f'{length} tokens exceed the largest length bucket {buckets[-1]}.')


def pad_batch(examples, spec: ExampleSpec, buckets=None) -> dict[str, np.ndarray]:
  """Stacks encoded examples, padding the text to the smallest fitting bucket."""
  length = bucket_length(max(len(e['ids']) for e in examples), buckets or spec.length_buckets)
  b = len(examples)
  ids = np.full((b, length), spec.pad_id, np.int32)
  labels = np.full((b, length), chat_template.IGNORE, np.int32)
  token_mask = np.zeros((b, length), bool)
  for i, e in enumerate(examples):
    n = len(e['ids'])
    ids[i, :n], labels[i, :n], token_mask[i, :n] = e['ids'], e['labels'], True
  return dict(ids=ids, labels=labels, token_mask=token_mask,
              pixels=np.stack([e['pixels'] for e in examples]),
              image_flags=np.array([e['image_flag'] for e in examples], np.int32),
              masks=np.concatenate([e['masks'] for e in examples]),
              mask_flags=np.concatenate([e['mask_flags'] for e in examples]))


@dataclasses.dataclass(frozen=True)
class PipelineConfig:
  batch_size: int                 # per process
  seed: int = 0
  num_epochs: int | None = None   # None: repeat forever
  worker_count: int = 0           # grain worker processes (0: in the main process)
  process_index: int = 0
  process_count: int = 1


class _EpochSample:
  """`(global index g, k) -> source.epoch_sample(k, g // len(source))` (picklable)."""

  def __init__(self, source):
    self.source = source

  def __call__(self, g: int, k: int) -> RefSample:
    return self.source.epoch_sample(k, g // len(self.source))


def sample_dataset(source, cfg: PipelineConfig) -> grain.MapDataset:
  """This process's samples in training order: a seeded shuffle of the source's indices,
  new every epoch, repeated, then every `process_count`-th from `process_index`. A source
  with `epoch_sample(k, epoch)` (a meta-file mixture) loads each index with its epoch."""
  if len(source) == 0:
    raise ValueError(f'the training source {source!r} holds no samples.')
  ds = grain.MapDataset.range(len(source)).shuffle(seed=cfg.seed).repeat(cfg.num_epochs)
  if hasattr(source, 'epoch_sample'):
    ds = ds.map_with_index(_EpochSample(source))
  else:
    ds = ds.map(source.__getitem__)
  return ds[cfg.process_index::cfg.process_count]


def make_dataset(source, tokenizer: Tokenizer, spec: ExampleSpec,
                 cfg: PipelineConfig) -> grain.IterDataset:
  """The training chain over a random-access `source` of `RefSample`s.

  Several processes all pad to the largest bucket (their batches form one global array,
  so every process must pick the same length)."""
  ds = sample_dataset(source, cfg)
  buckets = spec.length_buckets if cfg.process_count == 1 else spec.length_buckets[-1:]
  ds = (ds.to_iter_dataset().map(EncodeExample(tokenizer, spec))
        .filter(_is_example)
        .batch(cfg.batch_size, drop_remainder=True,
               batch_fn=functools.partial(pad_batch, spec=spec, buckets=buckets)))
  if cfg.worker_count:
    ds = ds.mp_prefetch(grain.MultiprocessingOptions(num_workers=cfg.worker_count),
                        worker_init_fn=_leave_sigterm_to_the_trainer)
  return ds


def training_inputs(config):
  """The trainer's `inputs` for a train config. ARGenSeg: `inputs(tokenizer, spec,
  batch_size)` (`config.data.meta` with `config.data.meta_root`, else `config.data.spec`;
  `config.data.workers`, `config.seed`), this process's share; the source is opened now,
  so bad data fails before a model is loaded. The mask VQ-VAE (`config.task ==
  'mask_vqvae'`): `synthetic_masks.mask_inputs(config)`."""
  if config.task == 'mask_vqvae':
    return synthetic_masks.mask_inputs(config)
  if config.data.meta:
    source = mixture.Mixture(config.data.meta, config.data.meta_root, seed=config.seed)
    source.check_max_masks(config.data.max_masks)
    logging.info('training mixture %s:\n  %s', config.data.meta, '\n  '.join(source.describe()))
  else:
    source = data_spec.open_source(config.data.spec, training=True)

  def inputs(tokenizer: Tokenizer, spec: ExampleSpec, batch_size: int) -> grain.IterDataset:
    return make_dataset(source, tokenizer, spec, PipelineConfig(
        batch_size=batch_size, seed=config.seed, worker_count=config.data.workers,
        process_index=jax.process_index(), process_count=jax.process_count()))
  return inputs


def _leave_sigterm_to_the_trainer(worker_index: int, worker_count: int) -> None:
  """Data workers ignore SIGTERM: a preemption often signals the whole process group, and
  the trainer needs its workers for the batch it saves at (grain stops them itself)."""
  del worker_index, worker_count
  signal.signal(signal.SIGTERM, signal.SIG_IGN)
