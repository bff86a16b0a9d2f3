"""The `argenseg` command line.

  argenseg vae-roundtrip   mask image -> multi-scale codes -> reconstructed mask PNG
  argenseg convert vae     VAR vae_ch160v4096z32.pth -> our checkpoint directory
  argenseg convert model   ARGenSeg-8B (Hugging Face-style directory) -> our checkpoint
  argenseg segment         segment an image from a referring expression
  argenseg train           train or fine-tune (resumes when rerun)
  argenseg eval            cIoU / gIoU / precision@k / N-acc of a checkpoint on a dataset
  argenseg plan            per-device memory and FLOPs of a mesh, from shapes alone
  argenseg parity          compare with reference outputs of the original code
"""

import argparse
import os
import pathlib
import sys
import time
from typing import NamedTuple

from absl import flags

from argenseg_jax import bundled, user_input

# `argenseg train` stopped by SIGTERM after saving: EX_TEMPFAIL of sysexits.h, "try again
# later"; rerunning resumes. 143 (128 + SIGTERM) would also be what a run killed before it
# could save reports.
EXIT_PREEMPTED = 75


def _vae_roundtrip(args) -> int:
  import numpy as np  # pylint: disable=import-outside-toplevel
  from argenseg_jax import image_io  # pylint: disable=import-outside-toplevel
  from argenseg_jax.config_args import load_config  # pylint: disable=import-outside-toplevel
  from argenseg_jax.vqvae_tokenizer import VQVAETokenizer  # pylint: disable=import-outside-toplevel
  from data_pipelines.mask_transforms import mask_to_vae_input  # pylint: disable=import-outside-toplevel

  user_input.png_path(args.out, '--out')
  if args.previews:
    user_input.folder_path(args.previews, '--previews')
  mask = image_io.read_rgb(args.image)
  cfg = load_config(args.config) if args.config else None
  if args.checkpoint:
    tok = VQVAETokenizer.load(args.checkpoint, cfg)
  elif cfg is not None:
    print('WARNING: --config without --checkpoint: using RANDOM weights, so the '
          'reconstruction is noise. Pass --checkpoint vae_ch160v4096z32.pth (or a converted '
          'directory) for real results.', file=sys.stderr)
    tok = VQVAETokenizer.random(cfg, seed=0)
  else:
    print(f'using the bundled mask VQ-VAE ({bundled.MASK_VQVAE})')
    tok = VQVAETokenizer.load(bundled.MASK_VQVAE)
  x = mask_to_vae_input(mask, tok.cfg.resolution)[None]
  t0 = time.perf_counter()
  codes = tok.encode(x)
  t1 = time.perf_counter()
  images = tok.decode(codes, all_scales=bool(args.previews))
  t2 = time.perf_counter()
  final = images[-1] if args.previews else images
  out = image_io.write_png(args.out, image_io.signed_to_uint8(final[0]))
  if args.previews:
    for si, img in enumerate(images):
      image_io.write_png(pathlib.Path(args.previews) / f'scale{si:02d}_pn{tok.patch_nums[si]}.png',
                         image_io.signed_to_uint8(img[0]))
  target = x[0].mean(-1) > 0
  pred = image_io.signed_to_uint8(final[0]).astype(np.float32).mean(-1) / 255 > 0.5
  iou = _iou(pred, target)
  print(f'encoded {args.image} into {sum(c.size for c in codes)} codes over scales '
        f'{tok.patch_nums} ({t1 - t0:.2f}s incl. compile); decoded in {t2 - t1:.2f}s')
  print(f'reconstruction -> {out}   mask IoU(input, reconstruction) = {iou:.4f}')
  return 0


def _convert(args) -> int:
  from argenseg_jax.checkpoints import atomic  # pylint: disable=import-outside-toplevel
  from argenseg_jax.config_args import load_config  # pylint: disable=import-outside-toplevel
  if args.what == 'vae':
    from argenseg_jax.models import var_vqvae_io  # pylint: disable=import-outside-toplevel
    atomic.check_target(args.dst, var_vqvae_io.DIR_FORMAT, args.overwrite)
    model, cfg = var_vqvae_io.load_vqvae(args.src, load_config(args.config or 'var_vqvae'))
    out = var_vqvae_io.save_vqvae(model, cfg, args.dst, args.overwrite)
  else:
    from argenseg_jax import pretrained  # pylint: disable=import-outside-toplevel
    out = pretrained.convert_pretrained(
        args.src, args.dst, vae=args.vae, overwrite=args.overwrite,
        vqvae_config=load_config(args.config) if args.config else None)
  print(f'converted {args.src} -> {out} (no PyTorch needed to load it)')
  return 0


class _Job(NamedTuple):
  """One `argenseg segment` request; `where` names its output in errors ('--out' or
  'FILE:LINE: "out"'), `origin` the request ('' or 'FILE:LINE: ')."""
  image: str
  question: 'str | chat_template.Referring'
  out: pathlib.Path              # the first mask; mask k > 0 goes to OUT_k.png
  previews: pathlib.Path | None  # folder for the first mask's decode of every scale
  where: str
  origin: str = ''


def _text(value, name: str, hint: str, where: str = '') -> str | None:
  """`value` if it is non-empty text, None if it is absent; anything else is refused."""
  if value is None or (isinstance(value, str) and value.strip()):
    return value
  got = 'empty' if isinstance(value, str) else f'{value!r}, not text'
  raise ValueError(f'{where}{name} is {got}: {hint}.')


def _question(prompt, expression, names: tuple[str, str], where: str = ''):
  """A whole `prompt`, or a referring `expression` as a `chat_template.Referring` (the
  model asks it in the referring question it was trained with); None if neither is
  given. `names` name the two in errors."""
  from argenseg_jax import chat_template  # pylint: disable=import-outside-toplevel
  prompt = _text(prompt, names[0], 'give a whole question, e.g. "<image>\\nPlease segment '
                 'the red circle."', where)
  expression = _text(expression, names[1], 'name what to segment, e.g. "the red circle"',
                     where)
  if prompt is not None and expression is not None:
    raise ValueError(f'{where}give {names[0]} (a whole question) or {names[1]} (wrapped in '
                     'the referring question the models were trained with), not both.')
  return prompt if expression is None else chat_template.Referring((expression,))


BATCH_KEYS = ('image', 'prompt', 'expression', 'out')


def _batch_jobs(path: pathlib.Path, previews) -> list[_Job]:
  """The requests of a `--batch` jsonl file; a line without "out" writes
  IMAGE_lineN_mask.png (N: its line number), and its previews go to PREVIEWS/lineN."""
  import json  # pylint: disable=import-outside-toplevel
  if not path.is_file():
    raise FileNotFoundError(f'--batch {path}: no such file.')
  jobs = []
  for n, line in enumerate(path.read_text().splitlines(), 1):
    if not line.strip():
      continue
    where = f'{path}:{n}: '
    try:
      row = json.loads(line)
    except ValueError as e:
      raise ValueError(f'{where}not JSON ({e}).') from None
    expected = ValueError(f'{where}expected {{"image", "prompt" or "expression", "out"?}}, '
                          f'got {line[:80]!r}.')
    if not isinstance(row, dict) or set(row) - set(BATCH_KEYS):
      raise expected
    image = _text(row.get('image'), '"image"', 'give the path of an image file', where)
    question = _question(row.get('prompt'), row.get('expression'), ('"prompt"', '"expression"'),
                         where)
    if image is None or question is None:
      raise expected
    out = _text(row.get('out'), '"out"', 'give a PNG file name or leave "out" out', where)
    out = pathlib.Path(out or f'{pathlib.Path(image).stem}_line{n}_mask.png')
    jobs.append(_Job(image, question, out, pathlib.Path(previews) / f'line{n}' if previews
                     else None, f'{path}:{n}: "out"', where))
  if not jobs:
    raise ValueError(f'{path} holds no {{"image", "prompt"}} lines.')
  return jobs


def _segment_jobs(args) -> list[_Job]:
  """The requests of `argenseg segment`, from the flags or `--batch`."""
  from argenseg_jax import chat_template  # pylint: disable=import-outside-toplevel
  text = _question(args.prompt, args.expression, ('--prompt', '--expression'))
  if args.batch:
    if text or args.image or args.out:
      raise ValueError('--batch FILE.jsonl replaces --image/--prompt/--expression/--out.')
    for flag, value in (('--target', args.target), ('--overlay', args.overlay)):
      if value:
        raise ValueError(f'{flag} is about one image: use it with --image, not --batch.')
    return _batch_jobs(pathlib.Path(args.batch), args.previews)
  if not (args.image or text or args.checkpoint):  # the demo: bundled model and scene
    print(f'using the bundled scene ({bundled.SCENE.name}, "{bundled.SCENE_EXPRESSION}")')
    args.target = args.target or str(bundled.SCENE_TARGET)
    args.image, text = str(bundled.SCENE), chat_template.Referring((bundled.SCENE_EXPRESSION,))
  if not (args.image and text):
    raise ValueError('give --image and --prompt/--expression, or --batch FILE.jsonl.')
  out = pathlib.Path(args.out or f'{pathlib.Path(args.image).stem}_mask.png')
  return [_Job(args.image, text, out, pathlib.Path(args.previews) if args.previews else None,
               '--out')]


def _check_outputs(jobs: list[_Job], overlay) -> None:
  """Every file the requests write can be written, and by one of them alone (mask k > 0
  of OUT.png goes to OUT_k.png); checked before the model is loaded."""
  owners = {}
  files = [(j.out, j.where) for j in jobs] + ([(overlay, '--overlay')] if overlay else [])
  for path, what in files:
    user_input.png_path(path, what)
    key = pathlib.Path(os.path.normcase(os.path.abspath(path)))
    if key in owners:
      raise ValueError(f'{what} {path}: {owners[key]} writes that file too; give each its '
                       'own name.')
    owners[key] = what
  for job in jobs:
    if job.previews:
      user_input.folder_path(job.previews, '--previews')
  for key, what in owners.items():
    base, _, k = key.stem.rpartition('_')
    other = owners.get(key.with_name(base + key.suffix))
    if k.isdigit() and other:
      raise ValueError(f'{what} {key.name}: that is the name of mask {k} of {other} '
                       f'{base + key.suffix}; give another name.')


def _check_questions(jobs: list[_Job], checkpoint) -> None:
  """A question that spells a special token is refused, naming its request, before the
  model is loaded (the tokenizer says which tokens are special)."""
  from argenseg_jax import chat_template  # pylint: disable=import-outside-toplevel
  from argenseg_jax.tokenizer import load_tokenizer  # pylint: disable=import-outside-toplevel
  if not pathlib.Path(checkpoint).is_dir():
    return  # `Segmenter.load` names the missing directory
  tokenizer = load_tokenizer(checkpoint)
  for job in jobs:
    if isinstance(job.question, chat_template.Referring):
      for sentence in job.question.sentences:
        chat_template.check_text(tokenizer, sentence, f'{job.origin}the expression')
    else:
      chat_template.check_text(tokenizer, job.question, f'{job.origin}the question',
                               allowed=(chat_template.IMAGE,))


def _iou(mask, target) -> float:
  """IoU of bool `[H, W]` masks of one shape (1 if both are empty)."""
  from argenseg_jax.evaluation import metrics  # pylint: disable=import-outside-toplevel
  return metrics.iou(*metrics.intersection_union(mask, target))


def _segment(args) -> int:
  import numpy as np  # pylint: disable=import-outside-toplevel
  from argenseg_jax import image_io  # pylint: disable=import-outside-toplevel
  from argenseg_jax.sampler import SamplerConfig  # pylint: disable=import-outside-toplevel
  from argenseg_jax.segmenter import Segmenter  # pylint: disable=import-outside-toplevel
  jobs = _segment_jobs(args)
  _check_outputs(jobs, args.overlay)
  checkpoint = args.checkpoint or bundled.ARGENSEG_SMALL
  _check_questions(jobs, checkpoint)
  images = [image_io.read_rgb(j.image) for j in jobs]
  target = np.asarray(image_io.read_rgb(args.target)).mean(-1) > 127 if args.target else None
  if target is not None and target.shape != (images[0].height, images[0].width):
    raise ValueError(f'--target {args.target} is {target.shape[1]}x{target.shape[0]} px, the '
                     f'image {images[0].width}x{images[0].height}: give the mask of this image.')
  if not args.checkpoint:
    print(f'using the bundled small ARGenSeg ({bundled.ARGENSEG_SMALL})')
  seg = Segmenter.load(checkpoint, batch_size=min(args.batch_size, len(jobs)),
                       sampler=SamplerConfig(max_new_tokens=args.max_new_tokens))
  results = seg.segment(images, [j.question for j in jobs])
  for job, image, res in zip(jobs, images, results):
    asked = getattr(job.question, 'sentences', (job.question,))
    print(f'{job.image}: {" ".join(asked)!r} -> {res.text!r} ({len(res.masks)} mask(s))')
    if res.out_of_masks:
      print('  (the answer asked for more masks than the sampler had room for)')
    for k, mask in enumerate(res.masks):
      name = job.out if k == 0 else job.out.with_name(f'{job.out.stem}_{k}{job.out.suffix}')
      print(f'  mask -> {image_io.write_png(name, mask.astype("uint8") * 255)}')
    if args.overlay and res.masks:
      print(f'  overlay -> {image_io.write_png(args.overlay, image_io.overlay(image, res.masks[0]))}')
    if target is not None:
      first = res.masks[0] if res.masks else np.zeros_like(target)
      print(f'  mask IoU with {args.target}: {_iou(first, target):.4f}')
    if job.previews and res.codes:
      previews = seg.decode_masks(res.codes[0][None], all_scales=True)[:, 0]
      for si, img in enumerate(previews):
        image_io.write_png(job.previews / f'scale{si:02d}.png', img)
  return 0


def _parity(args) -> int:
  from argenseg_jax.parity import main as parity_main  # pylint: disable=import-outside-toplevel
  return parity_main([args.fixture_dir] + (['--only', args.only] if args.only else []))


def _train(args) -> int:
  from argenseg_jax import config_args  # pylint: disable=import-outside-toplevel
  from argenseg_jax.training import trainer  # pylint: disable=import-outside-toplevel
  config = config_args.apply_overrides(config_args.load_config(args.config), args.overrides)
  try:
    metrics = trainer.train(config, args.workdir)
  except trainer.Preempted as e:
    print(f'argenseg train: {e}', file=sys.stderr)
    return EXIT_PREEMPTED
  if metrics:
    print(f'step {config.num_steps}: loss {metrics["loss"]:.4f}; workdir {args.workdir}')
  return 0


class _Parser(argparse.ArgumentParser):
  """Refuses bad arguments in one line (`--help` shows the usage)."""

  def error(self, message):
    self.exit(2, f'{self.prog}: error: {message} (see {self.prog} --help)\n')


def build_parser() -> argparse.ArgumentParser:
  parser = _Parser(prog='argenseg', description=__doc__,
                   formatter_class=argparse.RawDescriptionHelpFormatter)
  sub = parser.add_subparsers(dest='command', required=True, metavar='COMMAND')

  rt = sub.add_parser('vae-roundtrip', help='tokenize a mask with the VQ-VAE and decode it',
                      description='Encode a mask image into the multi-scale VQ-VAE codes and '
                      'decode them back to a PNG (the mask path of ARGenSeg).')
  rt.add_argument('--checkpoint', help='VAR .pth or a VQ-VAE directory (`argenseg convert '
                  'vae`, `vqvae_trainer`); default: the bundled mask VQ-VAE')
  rt.add_argument('--config', help="config spec, e.g. var_vqvae:res=512 (default: the "
                  "checkpoint's); alone: random weights, for a smoke test")
  rt.add_argument('--image', default=str(bundled.SCENE_MASK),
                  help='mask image (default: the bundled scene\'s mask)')
  rt.add_argument('--out', default='out/vae_roundtrip.png', help='reconstruction PNG')
  rt.add_argument('--previews', help='folder for the coarse-to-fine decodes of every scale')
  rt.set_defaults(func=_vae_roundtrip)

  cv = sub.add_parser('convert', help='convert a PyTorch checkpoint to our format',
                      description='vae: a VAR .pth -> config.json + params.safetensors. '
                      'model: a Hugging Face-style ARGenSeg directory (config.json, '
                      '(sharded) safetensors, tokenizer files) -> our orbax checkpoint.')
  cv.add_argument('what', choices=['vae', 'model'], help='which model the checkpoint holds')
  cv.add_argument('--from', dest='src', required=True,
                  help='vae_ch160v4096z32.pth, or the ARGenSeg-8B directory')
  cv.add_argument('--to', dest='dst', required=True, help='output directory')
  cv.add_argument('--vae', help='model: a VAR .pth for the image tokenizer (replaces or '
                  'supplies the image_tokenizer.* weights)')
  cv.add_argument('--config', help='VQ-VAE config spec (default: var_vqvae = ch160, vocab '
                  '4096, 256 px)')
  cv.add_argument('--overwrite', action='store_true',
                  help='write into a non-empty directory we did not write: our files in it '
                  'are replaced, the others kept (without it such a directory is refused)')
  cv.set_defaults(func=_convert)

  sg = sub.add_parser('segment', help='segment an image from a referring expression',
                      description='Generate the answer and its mask(s) for an image and a '
                      'question (or a jsonl of {"image", "prompt", "out"} lines).')
  sg.add_argument('--checkpoint',
                  help='our checkpoint (argenseg convert model / argenseg train export) or a '
                  'Hugging Face-style ARGenSeg directory, with tokenizer files (default: the '
                  'bundled small ARGenSeg of the synthetic domain)')
  sg.add_argument('--image', help='RGB image (any PIL format; default, with no question '
                  'or checkpoint either: the bundled scene and its expression)')
  sg.add_argument('--prompt', help='a whole question, e.g. "<image>\\nPlease segment the red '
                  'circle."')
  sg.add_argument('--expression', help='a referring expression, e.g. "the red circle", '
                  'asked in the referring question the model was trained with')
  sg.add_argument('--batch', help='jsonl file: one {"image", "prompt" or "expression", '
                  '"out"?} per line; a line N without "out" writes IMAGE_lineN_mask.png')
  sg.add_argument('--out', help='mask PNG (default: IMAGE_mask.png); a second mask goes to '
                  'OUT_1.png, and so on')
  sg.add_argument('--overlay', help='PNG of the image with the mask tinted')
  sg.add_argument('--previews', help='folder for the coarse-to-fine decodes of the first mask '
                  '(--batch: in PREVIEWS/lineN per line N)')
  sg.add_argument('--target', help='ground-truth mask PNG of the image: print the IoU of the '
                  'first mask with it')
  sg.add_argument('--max-new-tokens', type=user_input.positive_int, default=64)
  sg.add_argument('--batch-size', type=user_input.positive_int, default=8,
                  help='--batch: questions per model call')
  sg.set_defaults(func=_segment)

  tr = sub.add_parser('train', help='train or fine-tune; rerun the same command to resume',
                      description='Train with a config of configs/ (e.g. configs/train_tiny.py'
                      ', configs/train_argenseg8b.py). Fields can be overridden with '
                      '--config.FIELD=VALUE (e.g. --config.data.spec=custom:train.jsonl).')
  tr.add_argument('--config', required=True, help='configs/NAME.py[:ARGS] or NAME[:ARGS]')
  tr.add_argument('--workdir', required=True, help='checkpoints, metrics, TensorBoard, export')
  tr.set_defaults(func=_train)

  from argenseg_jax import plan  # pylint: disable=import-outside-toplevel
  from argenseg_jax.evaluation import evaluator, grounding  # pylint: disable=import-outside-toplevel
  ev = sub.add_parser('eval', help='evaluate a checkpoint on a referring dataset',
                      description=evaluator.__doc__,
                      formatter_class=argparse.RawDescriptionHelpFormatter)
  evaluator.add_arguments(ev)
  ev.set_defaults(func=evaluator.run_eval)

  gr = sub.add_parser('grounding', help='does a model need its image and its words? '
                      '(teacher-forced loss with own, swapped and shuffled inputs)',
                      description=grounding.__doc__,
                      formatter_class=argparse.RawDescriptionHelpFormatter)
  grounding.add_arguments(gr)
  gr.set_defaults(func=grounding.run)

  pl = sub.add_parser('plan', help='memory / FLOPs plan of a mesh (nothing allocated)',
                      description=plan.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  plan.add_arguments(pl)
  pl.set_defaults(func=plan.run)

  pa = sub.add_parser('parity', help='check our model against a golden fixture')
  pa.add_argument('fixture_dir')
  pa.add_argument('--only', help='comma-separated output-name prefixes')
  pa.set_defaults(func=_parity)
  for command in sub.choices.values():
    command.add_argument('--debug', action='store_true', help='show the traceback of an error '
                         '(as ARGENSEG_DEBUG=1 does)')
  return parser


def main(argv=None) -> int:
  flags.FLAGS.mark_as_parsed()
  args, rest = build_parser().parse_known_args(argv)
  args.overrides = [a.removeprefix('--config.') for a in rest if a.startswith('--config.')]
  unknown = [a for a in rest if not a.startswith('--config.') or args.command != 'train']
  if unknown:
    build_parser().error(f'unrecognized arguments: {" ".join(unknown)}')
  try:
    return args.func(args)
  except (OSError, ValueError, ImportError) as e:  # bad input; other exceptions are bugs
    if args.debug or os.environ.get('ARGENSEG_DEBUG', '0') != '0':
      raise
    print(f'argenseg {args.command}: error: {e}', file=sys.stderr)
    return 2


if __name__ == '__main__':
  sys.exit(main())
