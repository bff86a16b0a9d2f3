"""The `argenseg` command line: where the library (`argenseg_jax`) and the data code
(`data_pipelines`) meet. Nothing else in `argenseg_jax` imports `data_pipelines`
(`tests/test_import_direction.py`).

  argenseg vae-roundtrip   mask image -> multi-scale codes -> reconstructed mask PNG
  argenseg convert vae     VAR vae_ch160v4096z32.pth -> our checkpoint directory
  argenseg convert model   ARGenSeg-8B (Hugging Face-style directory) -> our checkpoint
  argenseg segment         segment an image from a referring expression
  argenseg serve           a web page and an HTTP API on a model
  argenseg train           train or fine-tune (resumes when rerun)
  argenseg eval            cIoU / gIoU / precision@k / N-acc of a checkpoint on a dataset
  argenseg plan            per-device memory and FLOPs of a mesh, from shapes alone
  argenseg parity          compare with reference outputs of the original code
"""

import argparse
import os
import sys
import time

from absl import flags

from argenseg_jax import bundled, plan, user_input
from argenseg_jax.cli import evaluate, segment, serve
from argenseg_jax.evaluation import evaluator, grounding

# `argenseg train` stopped by SIGTERM after saving: EX_TEMPFAIL of sysexits.h, "try again
# later"; rerunning resumes. 143 (128 + SIGTERM) would also be what a run killed before it
# could save reports.
EXIT_PREEMPTED = 75


def _vae_roundtrip(args) -> int:
  from argenseg_jax import image_io  # pylint: disable=import-outside-toplevel
  from argenseg_jax.config_args import load_config  # pylint: disable=import-outside-toplevel
  from argenseg_jax.mask_transforms import mask_to_vae_input  # pylint: disable=import-outside-toplevel
  from argenseg_jax.vqvae_tokenizer import VQVAETokenizer  # pylint: disable=import-outside-toplevel

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
    previews = user_input.path(args.previews)
    for si, img in enumerate(images):
      image_io.write_png(previews / f'scale{si:02d}_pn{tok.patch_nums[si]}.png',
                         image_io.signed_to_uint8(img[0]))
  iou = segment.iou(image_io.binarize(final[0]), image_io.binarize(x[0]))
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
  elif args.what == 'model':
    from argenseg_jax import pretrained  # pylint: disable=import-outside-toplevel
    out = pretrained.convert_pretrained(
        args.src, args.dst, vae=args.vae, overwrite=args.overwrite,
        vqvae_config=load_config(args.config) if args.config else None)
  else:  # back to the released layout
    from argenseg_jax import pretrained  # pylint: disable=import-outside-toplevel
    atomic.check_target(args.dst, pretrained.HF_EXPORT_FORMAT, args.overwrite)
    model, cfg = pretrained.load_pretrained(args.src)
    out = pretrained.export_hf(model, cfg, args.dst, tokenizer_dir=args.src,
                               overwrite=args.overwrite)
    print(f'exported {args.src} -> {out} (the original key names and shapes)')
    return 0
  print(f'converted {args.src} -> {out} (no PyTorch needed to load it)')
  return 0


def _parity(args) -> int:
  from argenseg_jax.parity import main as parity_main  # pylint: disable=import-outside-toplevel
  return parity_main([args.fixture_dir] + (['--only', args.only] if args.only else []))


def _train(args) -> int:
  from argenseg_jax import config_args  # pylint: disable=import-outside-toplevel
  from argenseg_jax.training import trainer  # pylint: disable=import-outside-toplevel
  from data_pipelines import train_pipeline  # pylint: disable=import-outside-toplevel
  config = config_args.apply_overrides(config_args.load_config(args.config), args.overrides)
  try:
    metrics = trainer.train(config, args.workdir, train_pipeline.training_inputs(config))
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
                  'vae`, the export of `argenseg train --config configs/mask_vqvae.py`); '
                  'default: the bundled mask VQ-VAE')
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
                      '(sharded) safetensors, tokenizer files) -> our orbax checkpoint. '
                      'hf: our checkpoint -> the released layout (config.json, '
                      'model.safetensors with the original keys, tokenizer files).')
  cv.add_argument('what', choices=['vae', 'model', 'hf'],
                  help='which model the checkpoint holds, or hf: export ours back')
  cv.add_argument('--from', dest='src', required=True,
                  help='vae_ch160v4096z32.pth, the ARGenSeg-8B directory, or (hf) ours')
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
  sg.set_defaults(func=segment.run)

  sv = sub.add_parser('serve', help='a web page and an HTTP API on a model (localhost)',
                      description=serve.__doc__,
                      formatter_class=argparse.RawDescriptionHelpFormatter)
  serve.add_arguments(sv)
  sv.set_defaults(func=serve.run)

  tr = sub.add_parser('train', help='train or fine-tune; rerun the same command to resume',
                      description='Train with a config of configs/ (e.g. configs/train_tiny.py'
                      ', configs/train_argenseg8b.py). Fields can be overridden with '
                      '--config.FIELD=VALUE (e.g. --config.data.spec=custom:train.jsonl).')
  tr.add_argument('--config', required=True, help='configs/NAME.py[:ARGS] or NAME[:ARGS]')
  tr.add_argument('--workdir', required=True, help='checkpoints, metrics, TensorBoard, export; '
                  'a local folder or a cloud one (gs://BUCKET/RUN)')
  tr.set_defaults(func=_train)

  ev = sub.add_parser('eval', help='evaluate a checkpoint on a referring dataset',
                      description=evaluator.__doc__,
                      formatter_class=argparse.RawDescriptionHelpFormatter)
  evaluate.add_eval_arguments(ev)
  ev.set_defaults(func=evaluate.run_eval)

  gr = sub.add_parser('grounding', help='does a model need its image and its words? '
                      '(teacher-forced loss with own, swapped and shuffled inputs)',
                      description=grounding.__doc__,
                      formatter_class=argparse.RawDescriptionHelpFormatter)
  evaluate.add_grounding_arguments(gr)
  gr.set_defaults(func=evaluate.run_grounding)

  pl = sub.add_parser('plan', help='memory / FLOPs plan of a mesh (nothing allocated)',
                      description=plan.__doc__,
                      formatter_class=argparse.RawDescriptionHelpFormatter)
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

