"""`argenseg segment`: the requests (flags or a `--batch` jsonl), their checks before the
model loads (outputs writable and distinct, no special tokens), then the answers, masks,
overlay, previews and the IoU with a target."""

import json
from typing import NamedTuple

import numpy as np
from etils import epath

from argenseg_jax import bundled, chat_template, image_io, user_input
from argenseg_jax.evaluation import metrics
from argenseg_jax.sampler import SamplerConfig
from argenseg_jax.segmenter import Segmenter
from argenseg_jax.tokenizer import load_tokenizer


class Job(NamedTuple):
  """One `argenseg segment` request; `where` names its output in errors ('--out' or
  'FILE:LINE: "out"'), `origin` the request ('' or 'FILE:LINE: ')."""
  image: str
  question: str | chat_template.Referring
  out: epath.Path              # the first mask; mask k > 0 goes to OUT_k.png
  previews: epath.Path | None  # folder for the first mask's decode of every scale
  where: str
  origin: str = ''


BATCH_KEYS = ('image', 'prompt', 'expression', 'out')


def batch_jobs(path: epath.Path, previews) -> list[Job]:
  """The requests of a `--batch` jsonl file; a line without "out" writes
  IMAGE_lineN_mask.png (N: its line number), and its previews go to PREVIEWS/lineN."""
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
    image = user_input.text_arg(row.get('image'), '"image"', 'give the path of an image file',
                                where)
    question = chat_template.parse_question(row.get('prompt'), row.get('expression'),
                              ('"prompt"', '"expression"'), where)
    if image is None or question is None:
      raise expected
    out = user_input.text_arg(row.get('out'), '"out"', 'give a PNG file name or leave "out" out',
                              where)
    out = user_input.path(out or f'{user_input.path(image).stem}_line{n}_mask.png')
    jobs.append(Job(image, question, out, user_input.path(previews) / f'line{n}' if previews
                    else None, f'{path}:{n}: "out"', where))
  if not jobs:
    raise ValueError(f'{path} holds no {{"image", "prompt"}} lines.')
  return jobs


def requests_of(args) -> list[Job]:
  """The requests of `argenseg segment`, from the flags or `--batch`."""
  text = chat_template.parse_question(args.prompt, args.expression, ('--prompt', '--expression'))
  if args.batch:
    if text or args.image or args.out:
      raise ValueError('--batch FILE.jsonl replaces --image/--prompt/--expression/--out.')
    for flag, value in (('--target', args.target), ('--overlay', args.overlay)):
      if value:
        raise ValueError(f'{flag} is about one image: use it with --image, not --batch.')
    return batch_jobs(user_input.path(args.batch), args.previews)
  if not (args.image or text or args.checkpoint):  # the demo: bundled model and scene
    print(f'using the bundled scene ({bundled.SCENE.name}, "{bundled.SCENE_EXPRESSION}")')
    args.target = args.target or str(bundled.SCENE_TARGET)
    args.image, text = str(bundled.SCENE), chat_template.Referring((bundled.SCENE_EXPRESSION,))
  if not (args.image and text):
    raise ValueError('give --image and --prompt/--expression, or --batch FILE.jsonl.')
  out = user_input.path(args.out or f'{user_input.path(args.image).stem}_mask.png')
  return [Job(args.image, text, out, user_input.path(args.previews) if args.previews else None,
              '--out')]


def check_outputs(jobs: list[Job], overlay) -> None:
  """Every file the requests write can be written, and by one of them alone (mask k > 0
  of OUT.png goes to OUT_k.png); checked before the model is loaded."""
  owners = {}
  files = [(j.out, j.where) for j in jobs] + ([(overlay, '--overlay')] if overlay else [])
  for path, what in files:
    key = user_input.png_path(path, what)
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


def check_questions(jobs: list[Job], checkpoint) -> None:
  """A question that spells a special token is refused, naming its request, before the
  model is loaded (the tokenizer says which tokens are special)."""
  if not user_input.path(checkpoint).is_dir():
    return  # `Segmenter.load` names the missing directory
  tokenizer = load_tokenizer(checkpoint)
  for job in jobs:
    if isinstance(job.question, chat_template.Referring):
      for sentence in job.question.sentences:
        chat_template.check_text(tokenizer, sentence, f'{job.origin}the expression')
    else:
      chat_template.check_text(tokenizer, job.question, f'{job.origin}the question',
                               allowed=(chat_template.IMAGE,))


def iou(mask, target) -> float:
  """IoU of bool `[H, W]` masks of one shape (1 if both are empty)."""
  return metrics.iou(*metrics.intersection_union(mask, target))


def run(args) -> int:
  jobs = requests_of(args)
  check_outputs(jobs, args.overlay)
  checkpoint = args.checkpoint or bundled.ARGENSEG_SMALL
  check_questions(jobs, checkpoint)
  images = [image_io.read_rgb(j.image) for j in jobs]
  target = np.asarray(image_io.read_rgb(args.target)).mean(-1) > 127 if args.target else None
  if target is not None and target.shape != (images[0].height, images[0].width):
    raise ValueError(f'--target {args.target} is {target.shape[1]}x{target.shape[0]} px, the '
                     f'image {images[0].width}x{images[0].height}: give the mask of this image.')
  if not args.checkpoint:
    print(f'using the bundled small ARGenSeg ({bundled.ARGENSEG_SMALL})')
  seg = Segmenter.load(checkpoint, batch_size=min(args.batch_size, len(jobs)),
                       sampler_config=SamplerConfig(max_new_tokens=args.max_new_tokens))
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
      overlay = image_io.overlay(image, res.masks[0])
      print(f'  overlay -> {image_io.write_png(args.overlay, overlay)}')
    if target is not None:
      first = res.masks[0] if res.masks else np.zeros_like(target)
      print(f'  mask IoU with {args.target}: {iou(first, target):.4f}')
    if job.previews and res.codes:
      previews = seg.decode_masks(res.codes[0][None], all_scales=True)[:, 0]
      for si, img in enumerate(previews):
        image_io.write_png(job.previews / f'scale{si:02d}.png', img)
  return 0
