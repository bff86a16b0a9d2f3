"""A miniature of ARGenSeg's training mixture, in the original's files, from synthetic scenes.

  python -m data_pipelines.miniature_mixture OUT_DIR [--per-source 6] [--size 64]

Writes `OUT_DIR/meta.json` (InternVL meta format), `anns/*.jsonl`, `images/*.png` and
`masks/*.png`, one source per kind the paper mixes (paths relative to OUT_DIR, the
`config.data.meta_root` of `configs/train_mixture_tiny.py`):

  source         dataset tag             entry
  refcoco        refcoco                 referring question, one mask
  gref           grefcoco                idem, half of them about an absent object (empty mask)
  coco_seg       coco_seg                panoptic PNG + seg_info, "Please segment {} ..."
  ade            refcoco_ade20k          one shape class (all objects of that shape)
  lisa_inst      refcoco_lisa_instance   every object of a colour, one mask each (a list)
  understanding  synthetic_vqa           a question about the image, no mask
  text_only      synthetic_text          a conversation without an image

Shapes stand for COCO panoptic categories (`PANOPTIC_CATEGORY`), the background for
`wall-other-merged`; segment ids are spread over the PNG's three channels. The bundled
copy is `argenseg_jax/assets/mixture_tiny` (written with the defaults).
"""

import argparse
import json

import numpy as np

from argenseg_jax import image_io, user_input
from data_pipelines.synthetic_scenes import Referent, SyntheticScenes

PANOPTIC_CATEGORY = {'circle': 37, 'square': 72, 'triangle': 38}  # sports ball, tv, kite
BACKGROUND_CATEGORY = 199  # wall-other-merged
REPEAT_TIME = {'refcoco': 2, 'gref': 1, 'coco_seg': 1, 'ade': 1, 'lisa_inst': 1,
               'understanding': 0.5, 'text_only': 1}
REFERRING = ('<image>\n Given the following instructions: {}.; please perform referring '
             'segmentation on this image.')
NUMBER_WORDS = ('zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine')


def _turns(question: str, answer: str) -> list[dict]:
  return [{'from': 'human', 'value': question}, {'from': 'gpt', 'value': answer}]


class _Writer:
  """Writes images and masks under `out` and collects each source's entries."""

  def __init__(self, out):
    self.out = out
    self.entries = {name: [] for name in REPEAT_TIME}

  def png(self, folder: str, name: str, pixels: np.ndarray) -> str:
    rel = f'{folder}/{name}.png'
    image_io.write_png(self.out / rel, pixels)
    return rel

  def mask(self, name: str, mask: np.ndarray) -> str:
    return self.png('masks', name, mask.astype(np.uint8) * 255)

  def add(self, source: str, entry: dict) -> None:
    entry['id'] = len(self.entries[source])
    self.entries[source].append(entry)


def _panoptic_png(scene) -> tuple[np.ndarray, list[dict]]:
  """uint8 `[H, W, 3]` segment ids (R + 256 G + 256^2 B) and the entry's seg_info."""
  height, width = scene.background.shape[:2]
  ids = np.full((height, width), 70000, np.int64)  # the background segment
  info = [{'id': 70000, 'category_id': BACKGROUND_CATEGORY}]
  for k, obj in enumerate(scene.objects):
    segment = 300 + 257 * k
    ids[obj.region] = np.where(obj.footprint(), segment, ids[obj.region])
    info.append({'id': segment, 'category_id': PANOPTIC_CATEGORY[obj.shape]})
  rgb = np.stack([ids % 256, ids // 256 % 256, ids // 65536], -1).astype(np.uint8)
  return rgb, info


def _union(scene, indices) -> np.ndarray:
  """bool `[H, W]`: the objects `indices` of `scene`."""
  return scene.mask(Referent('', '', tuple(indices)))


def write(out_dir, per_source: int = 6, size: int = 64, seed: int = 0):
  """Writes the miniature (see the module docstring); returns the meta file's path."""
  out = user_input.path(out_dir)
  w = _Writer(out)
  targets = SyntheticScenes(per_source, seed, size=size, no_target_fraction=0.0)
  absent = SyntheticScenes(per_source, seed + 1, size=size, no_target_fraction=0.5)
  for i in range(per_source):
    scene, tag = targets.scene(i), f'{i:02d}'
    image = w.png('images', tag, scene.image())
    w.add('refcoco', {'image': image, 'mask': w.mask(f'refcoco_{tag}', scene.mask()),
                      'conversations': _turns(REFERRING.format(scene.referent.text),
                                              'Sure, the segmentation result: <mask>.'),
                      'dataset': 'refcoco'})
    other = absent.scene(i)
    w.add('gref', {'image': w.png('images', f'gref_{tag}', other.image()),
                   'mask': w.mask(f'gref_{tag}', other.mask()),
                   'conversations': _turns(REFERRING.format(other.referent.text),
                                           'Sure, the segmentation result: <mask>.'),
                   'dataset': 'grefcoco'})
    rgb, info = _panoptic_png(scene)
    w.add('coco_seg', {'image': image, 'mask': w.png('masks', f'panoptic_{tag}', rgb),
                       'conversations': _turns('<image>\n Please segment {} in this image.',
                                               'Sure, the segmentation result: <mask>.'),
                       'dataset': 'coco_seg', 'seg_info': info})
    shape = scene.objects[i % len(scene.objects)].shape
    same = [k for k, o in enumerate(scene.objects) if o.shape == shape]
    w.add('ade', {'image': image, 'mask': w.mask(f'ade_{tag}', _union(scene, same)),
                  'conversations': _turns(f'<image>\n Please segment {shape} in this image.',
                                          'Sure, the segmentation results: <mask>.'),
                  'dataset': 'refcoco_ade20k'})
    colour = scene.objects[0].colour
    each = [k for k, o in enumerate(scene.objects) if o.colour == colour][:2]
    w.add('lisa_inst', {
        'image': image,
        'mask': [w.mask(f'lisa_{tag}_{k}', _union(scene, [k])) for k in each],
        'conversations': _turns(
            '<image>\n Please perform instance segmentation following the instructions '
            f'below: Identify the {colour} shapes.',
            'Sure, the segmentation results are: ' + ' and '.join(['<mask>'] * len(each))
            + '.'),
        'dataset': 'refcoco_lisa_instance'})
    count = len(scene.objects)
    w.add('understanding', {'image': image, 'dataset': 'synthetic_vqa',
                            'conversations': _turns('<image>\nHow many shapes are there?',
                                                    f'There are {NUMBER_WORDS[count]}.')})
    a, b = i % 5, (3 * i + 1) % 4
    w.add('text_only', {'dataset': 'synthetic_text',
                        'conversations': _turns(f'What is {a} plus {b}?',
                                                f'{a} plus {b} is {NUMBER_WORDS[a + b]}.')})
  meta = {}
  for name, entries in w.entries.items():
    annotation = f'anns/{name}.jsonl'
    (out / annotation).parent.mkdir(parents=True, exist_ok=True)
    (out / annotation).write_text(''.join(json.dumps(e) + '\n' for e in entries))
    meta[name] = {'root': '', 'annotation': annotation, 'data_augment': name == 'refcoco',
                  'repeat_time': REPEAT_TIME[name], 'length': len(entries)}
  (out / 'meta.json').write_text(json.dumps(meta, indent=2) + '\n')
  return out / 'meta.json'


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('out_dir')
  parser.add_argument('--per-source', type=int, default=6)
  parser.add_argument('--size', type=int, default=64)
  args = parser.parse_args(argv)
  print(write(args.out_dir, args.per_source, args.size))


if __name__ == '__main__':
  main()
