"""`argenseg eval` and `argenseg grounding`: a checkpoint against a data spec
(`data_pipelines/data_spec.py`). The measuring is the library's
(`evaluation/evaluator.py`, `evaluation/grounding.py`); here the data is opened."""

import dataclasses

import jax

from argenseg_jax import pretrained, user_input
from argenseg_jax.evaluation import evaluator, grounding
from argenseg_jax.example_spec import spec_for
from argenseg_jax.sampler import SamplerConfig
from argenseg_jax.segmenter import Segmenter
from argenseg_jax.tokenizer import load_tokenizer
from data_pipelines import data_spec, train_pipeline

# Grounding batches pad to a multiple of 128 tokens.
BUCKETS = tuple(range(128, 16385, 128))


def add_eval_arguments(parser) -> None:
  """The `argenseg eval` arguments (argparse), read by `run_eval`."""
  parser.add_argument('--checkpoint', required=True, help='our checkpoint (argenseg convert '
                      'model) or a Hugging Face-style ARGenSeg directory')
  parser.add_argument('--data', required=True, help='data spec: ' + ', '.join(
      k.syntax for k in data_spec.KINDS.values()))
  parser.add_argument('--out', required=True, help='folder for report.json and overlays')
  parser.add_argument('--protocol', choices=evaluator.PROTOCOLS, default='object',
                      help='object: one question per sample, all sentences joined (the '
                      "original's); sentence: one question per sentence")
  parser.add_argument('--batch-size', type=user_input.positive_int, default=8,
                      help='questions per model call')
  parser.add_argument('--max-samples', type=user_input.positive_int,
                      help='evaluate only the first N samples')
  parser.add_argument('--num-overlays', type=user_input.non_negative_int, default=4,
                      help='overlay PNGs [GT | prediction] to write')
  parser.add_argument('--max-new-tokens', type=user_input.positive_int, default=64,
                      help='answer token budget (greedy)')


def run_eval(args) -> int:
  """`argenseg eval`: checks --out, loads the data source, then the model, evaluates,
  prints metrics."""
  user_input.folder_path(args.out, '--out')
  source = data_spec.open_source(args.data)
  if len(source) == 0:
    raise ValueError(f'--data {args.data} holds no samples: nothing to evaluate.')
  segmenter = Segmenter.load(args.checkpoint, batch_size=args.batch_size,
                             sampler_config=SamplerConfig(max_new_tokens=args.max_new_tokens))
  report = evaluator.evaluate(segmenter, source, batch_size=args.batch_size, protocol=args.protocol,
                    out_dir=args.out, num_overlays=args.num_overlays,
                    max_samples=args.max_samples, checkpoint=str(args.checkpoint),
                    data=args.data)
  if jax.process_index() == 0:
    print(evaluator.format_summary(report))
    print(f'report -> {user_input.path(args.out) / "report.json"}')
  return 0


def load_batches(checkpoint: str, spec_text: str, samples: int):
  """`(model, batch, shuffled)`: the checkpoint and its first `samples` examples of
  `spec_text` encoded as in training (one mask per example), and the same examples with
  the expressions of sample i + 1 asked about sample i's image (its own target kept)."""
  source = data_spec.open_source(spec_text)
  if len(source) < samples:
    raise ValueError(f'{spec_text} has {len(source)} samples, fewer than --samples {samples}.')
  model, cfg = pretrained.load_pretrained(checkpoint)
  spec = spec_for(cfg, length_buckets=BUCKETS, max_masks=1)
  encode = train_pipeline.EncodeExample(load_tokenizer(checkpoint), spec)
  chosen = [source[i] for i in range(samples)]
  for sample in chosen:
    if len(sample.masks) != 1 or sample.conversation or sample.dialogue:
      raise ValueError(f'{sample.origin}: the check reads samples of one expression and '
                       'one mask.')
  others = chosen[1:] + chosen[:1]
  shuffled = [dataclasses.replace(s, sentences=o.sentences) for s, o in zip(chosen, others)]
  batch, shuffled = (train_pipeline.pad_batch([encode.map(s) for s in group], spec)
                     for group in (chosen, shuffled))
  return model, batch, shuffled


def add_grounding_arguments(parser) -> None:
  """The `argenseg grounding` arguments (argparse), read by `run_grounding`."""
  parser.add_argument('--checkpoint', required=True, help='an exported ARGenSeg directory')
  parser.add_argument('--data', required=True, help='data spec, e.g. synthetic:seed=1,n=32')
  parser.add_argument('--samples', type=user_input.positive_int, default=32)


def run_grounding(args) -> int:
  """`argenseg grounding`: prints the three losses and the per-scale accuracies."""
  dep = grounding.image_dependence(*load_batches(args.checkpoint, args.data, args.samples))
  print(f'visual-token loss: own images and expressions {dep.loss_own:.4f}, swapped '
        f'images {dep.loss_swapped:.4f}, shuffled expressions {dep.loss_shuffled:.4f}')
  print(f'code accuracy per scale, own:      {list(dep.accuracy_own)}')
  print(f'code accuracy per scale, swapped:  {list(dep.accuracy_swapped)}')
  print(f'code accuracy per scale, shuffled: {list(dep.accuracy_shuffled)}')
  return 0
