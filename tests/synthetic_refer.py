"""A tiny RefCOCO / gRefCOCO folder with hand-checkable masks, written for tests.

    root/refcoco/{refs(unc).p, instances.json}
    root/grefcoco/{grefs(unc).json, instances.json}
    root/images/train2014/COCO_train2014_00000000000{1,2}.jpg

Objects (image 1 is 16x12 RGB, image 2 is 10x8 grey):
  101: square polygon, rows 2..5 x cols 2..5 of image 1 (16 px)
  102: compressed RLE, columns 10..11 of image 1 (24 px)
  201: polygon, rows 1..3 x cols 1..4 of image 2 (12 px)
"""

import json
import pathlib
import pickle

import numpy as np
from PIL import Image

SQUARE = [2, 2, 6, 2, 6, 6, 2, 6]
IMAGES = [{'id': 1, 'file_name': 'COCO_train2014_000000000001.jpg', 'height': 12, 'width': 16},
          {'id': 2, 'file_name': 'COCO_train2014_000000000002.jpg', 'height': 8, 'width': 10}]
ANNOTATIONS = [
    {'id': 101, 'image_id': 1, 'iscrowd': 0, 'segmentation': [SQUARE]},
    # Runs [120, 24, 48] over 12 rows: columns 0-9 off, 10-11 on, 12-15 off.
    {'id': 102, 'image_id': 1, 'iscrowd': 1, 'segmentation': {'size': [12, 16],
                                                              'counts': 'h3h0`1'}},
    {'id': 201, 'image_id': 2, 'iscrowd': 0, 'segmentation': [[1, 1, 5, 1, 5, 4, 1, 4]]},
]
PIXELS = {101: 16, 102: 24, 201: 12}


def _sentences(*texts):
  return [{'sent_id': i, 'sent': t, 'raw': t.upper(), 'tokens': t.split()}
          for i, t in enumerate(texts)]


REFS = [
    {'ref_id': 0, 'ann_id': 101, 'image_id': 1, 'split': 'train', 'category_id': 1,
     'file_name': 'COCO_train2014_000000000001_101.jpg',
     'sentences': _sentences('left square', 'small box')},
    {'ref_id': 1, 'ann_id': 102, 'image_id': 1, 'split': 'val', 'category_id': 1,
     'file_name': 'COCO_train2014_000000000001_102.jpg', 'sentences': _sentences('right bar')},
    {'ref_id': 2, 'ann_id': 201, 'image_id': 2, 'split': 'val', 'category_id': 2,
     'file_name': 'COCO_train2014_000000000002_201.jpg', 'sentences': _sentences('the box')},
    {'ref_id': 3, 'ann_id': 201, 'image_id': 2, 'split': 'val', 'category_id': 2,
     'file_name': 'COCO_train2014_000000000002_201.jpg', 'sentences': []},
]
GREFS = [
    {'ref_id': 10, 'ann_id': [101, 102], 'no_target': False, 'image_id': 1, 'split': 'val',
     'category_id': [1, 1], 'file_name': 'COCO_train2014_000000000001.jpg',
     'sentences': _sentences('both things')},
    {'ref_id': 11, 'ann_id': [-1], 'no_target': True, 'image_id': 1, 'split': 'val',
     'category_id': [], 'file_name': 'COCO_train2014_000000000001.jpg',
     'sentences': _sentences('a purple cow')},
    {'ref_id': 12, 'ann_id': [201], 'no_target': False, 'image_id': 2, 'split': 'train',
     'category_id': [2], 'file_name': 'COCO_train2014_000000000002.jpg',
     'sentences': _sentences('the box')},
]


def write_image(path: pathlib.Path, width: int, height: int, mode: str = 'RGB') -> pathlib.Path:
  """A deterministic gradient image."""
  path.parent.mkdir(parents=True, exist_ok=True)
  pixels = np.arange(height * width * 3, dtype=np.uint32).reshape(height, width, 3) % 251
  Image.fromarray(pixels.astype(np.uint8)).convert(mode).save(path)
  return path


def write_instances(path: pathlib.Path) -> None:
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_text(json.dumps({'images': IMAGES, 'annotations': ANNOTATIONS,
                              'categories': [{'id': 1, 'name': 'a'}, {'id': 2, 'name': 'b'}]}))


def write_refer(root: pathlib.Path) -> pathlib.Path:
  """Writes the folder described in the module docstring; returns `root`."""
  write_instances(root / 'refcoco' / 'instances.json')
  write_instances(root / 'grefcoco' / 'instances.json')
  (root / 'refcoco' / 'refs(unc).p').write_bytes(pickle.dumps(REFS, protocol=2))
  (root / 'grefcoco' / 'grefs(unc).json').write_text(json.dumps(GREFS))
  images = root / 'images' / 'train2014'
  write_image(images / IMAGES[0]['file_name'], 16, 12)
  write_image(images / IMAGES[1]['file_name'], 10, 8, mode='L')
  return root
