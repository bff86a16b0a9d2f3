"""Dataset readers: COCO masks, PSALM files, RefCOCO / gRefCOCO, custom jsonl."""

import json
import pickle

import grain
import numpy as np
import pytest
from PIL import Image

from data_pipelines import coco_masks
from data_pipelines.custom_reader import CustomReader
from data_pipelines.psalm_reader import SKIP_NO_INSTRUCTION, SKIP_NOT_SINGLE_IMAGE, PsalmReader
from data_pipelines.reader_checks import EmptyDatasetError
from data_pipelines.refcoco_reader import SKIP_NO_SENTENCES, RefCocoReader, load_refs
from tests import synthetic_refer as syn


def _box(height, width, rows, cols):
  mask = np.zeros((height, width), bool)
  mask[rows[0]:rows[1] + 1, cols[0]:cols[1] + 1] = True
  return mask


# ---- COCO masks (expected pixels checked against pycocotools 2.0.11 by hand) ----

def test_square_polygon_covers_pixel_centres():
  mask = coco_masks.segmentation_to_mask([[2, 2, 6, 2, 6, 6, 2, 6]], 8, 8)
  np.testing.assert_array_equal(mask, _box(8, 8, (2, 5), (2, 5)))


def test_fractional_polygon_and_triangle():
  rect = coco_masks.polygon_to_mask([1.3, 0.6, 4.2, 0.6, 4.2, 3.7, 1.3, 3.7], 6, 6)
  np.testing.assert_array_equal(rect, _box(6, 6, (1, 3), (1, 3)))
  tri = coco_masks.polygon_to_mask([0, 0, 4, 0, 0, 4], 5, 5)
  rows, cols = np.nonzero(tri)
  assert sorted(zip(rows, cols)) == [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (2, 0)]


def test_polygons_union_and_degenerate():
  two = coco_masks.segmentation_to_mask([[0, 0, 2, 0, 2, 2, 0, 2], [1, 1, 3, 1, 3, 3, 1, 3]],
                                        4, 4)
  assert two.sum() == 7 and two[1, 1] and two[2, 2] and not two[0, 3]
  assert not coco_masks.segmentation_to_mask([[1, 1, 3, 3]], 4, 4).any()
  assert not coco_masks.segmentation_to_mask([], 4, 4).any()


def _picture(rows: str) -> np.ndarray:
  """'#' = True, '.' = False, rows separated by spaces."""
  return np.array([[c == '#' for c in row] for row in rows.split()])


# Polygons on the first and last rows and columns of a 6x5 image, with pycocotools
# 2.0.11's pixels: a pixel is inside when its centre is, and a centre on the boundary
# counts on the right and bottom edges but not on the left and top ones.
@pytest.mark.parametrize('polygon,pixels', [
    ([0, 0, 6, 0, 6, 5, 0, 5], '###### ###### ###### ###### ######'),
    ([-0.5, -0.5, 6.8, -0.5, 6.8, 5.9, -0.5, 5.9], '###### ###### ###### ###### ######'),
    ([0, 4.4, 6, 4.4, 6, 5, 0, 5], '...... ...... ...... ...... ######'),
    ([5.4, 0, 6, 0, 6, 5, 5.4, 5], '.....# .....# .....# .....# .....#'),
    ([0, 0, 6, 0, 6, 0.6, 0, 0.6], '###### ...... ...... ...... ......'),
    ([0, 0, 0.6, 0, 0.6, 5, 0, 5], '#..... #..... #..... #..... #.....'),
    ([0, 4.6, 6, 4.6, 6, 5, 0, 5], '...... ...... ...... ...... ......'),
    ([5, 4, 6, 4, 6, 5, 5, 5], '...... ...... ...... ...... .....#'),
    ([6, 5, 2, 5, 6, 1], '...... .....# ....## ...### ..####'),
    ([0.5, 0.5, 5.5, 0.5, 5.5, 4.5, 0.5, 4.5], '...... .##### .##### .##### .#####'),
])
def test_polygons_on_the_image_border(polygon, pixels):
  np.testing.assert_array_equal(coco_masks.segmentation_to_mask([polygon], 5, 6),
                                _picture(pixels))


def test_polygon_errors():
  with pytest.raises(ValueError, match='odd number'):
    coco_masks.segmentation_to_mask([[1, 1, 2, 2, 3]], 4, 4)
  coco_masks.segmentation_to_mask([[-0.9, 0, 4.9, 0, 4.9, 4]], 4, 4)  # within 1 px
  with pytest.raises(ValueError, match=r'x in \[0, 7\].*outside the 4x4 image'):
    coco_masks.segmentation_to_mask([[0, 0, 7, 0, 7, 3]], 4, 4)
  with pytest.raises(ValueError, match='ref 7: annotation 1: polygon spans'):
    coco_masks.union_mask([[], [[0, 0, 3, -5, 3, 3]]], 4, 4, 'ref 7')


def test_rle_uncompressed_and_compressed():
  expected = np.array([[0, 0, 0, 1], [1, 0, 0, 1], [1, 0, 1, 1]], bool)
  raw = coco_masks.rle_to_mask({'size': [3, 4], 'counts': [1, 2, 5, 4]}, 3, 4)
  np.testing.assert_array_equal(raw, expected)
  assert coco_masks.decode_counts_string('1252') == [1, 2, 5, 4]
  np.testing.assert_array_equal(
      coco_masks.rle_to_mask({'size': [3, 4], 'counts': '1252'}, 3, 4), expected)
  # Multi-char count (40 = 'X1') and a negative delta (2 - 3 = 'O').
  assert coco_masks.decode_counts_string('X131O') == [40, 3, 1, 2]
  bar = coco_masks.rle_to_mask({'size': [12, 16], 'counts': 'h3h0`1'}, 12, 16)
  np.testing.assert_array_equal(bar, _box(12, 16, (0, 11), (10, 11)))


def test_rle_errors():
  with pytest.raises(ValueError, match='sum to 11.*3\\*4 = 12'):
    coco_masks.rle_to_mask({'size': [3, 4], 'counts': [1, 2, 8]}, 3, 4)
  with pytest.raises(ValueError, match='RLE size'):
    coco_masks.rle_to_mask({'size': [4, 3], 'counts': [12]}, 3, 4)
  with pytest.raises(ValueError, match='invalid character'):
    coco_masks.decode_counts_string('1 2')
  with pytest.raises(ValueError, match='middle of a count'):
    coco_masks.decode_counts_string('1X')


# ---- PSALM files ----

def _psalm_entry(file_name, sentences, anns, height=12, width=16):
  return {'image': file_name, 'image_info': {'file_name': file_name, 'height': height,
                                             'width': width, 'id': 1},
          'instruction': [{'sent': s, 'sent_id': i} for i, s in enumerate(sentences)],
          'anns': [{'segmentation': seg, 'id': i} for i, seg in enumerate(anns)]}


@pytest.fixture
def image_root(tmp_path):
  syn.write_image(tmp_path / 'img' / 'a.jpg', 16, 12)
  return tmp_path / 'img'


def test_psalm_referring_entries(tmp_path, image_root):
  rle = {'size': [12, 16], 'counts': 'h3h0`1'}
  entries = [_psalm_entry('a.jpg', ['man in red', 'left guy'], [[syn.SQUARE]]),
             _psalm_entry('a.jpg', ['both'], [[syn.SQUARE], rle]),
             _psalm_entry('a.jpg', ['nobody'], []),
             _psalm_entry('a.jpg', [], [[syn.SQUARE]])]
  path = tmp_path / 'val_psalm.json'
  path.write_text(json.dumps(entries))
  reader = PsalmReader(path, image_root)
  assert len(reader) == 3
  assert reader.skipped == [(f'{path}[3]', SKIP_NO_INSTRUCTION)]
  first, both, empty = reader[0], reader[1], reader[2]
  assert first.sentences == ['man in red', 'left guy'] and first.conversation is None
  assert first.image == str(image_root / 'a.jpg') and first.origin == f'{path}[0]'
  np.testing.assert_array_equal(first.masks[0], _box(12, 16, (2, 5), (2, 5)))
  assert len(both.masks) == 1 and both.masks[0].sum() == 16 + 24
  assert empty.masks[0].shape == (12, 16) and not empty.has_target


def test_psalm_conversation_entries(tmp_path, image_root):
  Image.fromarray(_box(12, 16, (0, 3), (0, 3)).astype(np.uint8) * 255).save(
      image_root / 'm.png')
  gpt = {'from': 'gpt', 'value': 'Sure, the segmentation result: <mask>.'}
  lines = [
      {'image': 'a.jpg', 'mask': 'm.png', 'dataset': 'refcoco',
       'conversations': [{'from': 'human', 'value': '<image>\n Given ...'}, gpt]},
      {'image': 'a.jpg', 'mask': ['m.png'], 'dataset': 'refcoco_lisa_instance',
       'conversations': [{'from': 'human', 'value': 'Please segment it.'}, gpt]},
      {'image': ['a.jpg', 'a.jpg'], 'dataset': 'mmbench',
       'conversations': [{'from': 'human', 'value': '<image>\n<image>\n Same?'}, gpt]},
      {'conversations': [{'from': 'human', 'value': 'Hello?'}, {'from': 'gpt', 'value': 'Hi.'}]},
  ]
  path = tmp_path / 'anns.jsonl'
  path.write_text('\n'.join(json.dumps(line) for line in lines) + '\n')
  reader = PsalmReader(path, image_root)
  assert len(reader) == 3 and reader.skipped == [(f'{path}:3', SKIP_NOT_SINGLE_IMAGE)]
  text = reader[2]
  assert text.image is None and text.masks == [] and text.conversation[0]['value'] == 'Hello?'
  assert len(PsalmReader(path, image_root, training=False)) == 2  # evaluation: masks only
  sample = reader[1]
  assert sample.origin == f'{path}:2' and sample.sentences == []
  assert sample.conversation[0]['value'] == '<image>\nPlease segment it.'
  assert sample.masks[0].sum() == 16


def test_psalm_errors(tmp_path, image_root):
  path = tmp_path / 'bad.jsonl'
  path.write_text(json.dumps(_psalm_entry('a.jpg', ['x'], [])) + '\n{"image_info": \n')
  with pytest.raises(ValueError, match=r'bad\.jsonl:2: invalid JSON'):
    PsalmReader(path, image_root)
  path.write_text(json.dumps(_psalm_entry('missing.jpg', ['x'], [])) + '\n')
  with pytest.raises(FileNotFoundError, match=r'bad\.jsonl:1: image not found: .*missing\.jpg'):
    PsalmReader(path, image_root)[0]
  path.write_text(json.dumps(_psalm_entry('a.jpg', ['x'], [[[0, 0, 30, 0, 30, 5]]])) + '\n')
  with pytest.raises(ValueError, match=r'bad\.jsonl:1: annotation 0: polygon spans'):
    PsalmReader(path, image_root)[0]
  path.write_text(json.dumps(_psalm_entry('a.jpg', [], [])) + '\n')
  with pytest.raises(EmptyDatasetError, match=r'bad\.jsonl: no samples; 1 entries were skipped'):
    PsalmReader(path, image_root)
  path.write_text(json.dumps({'image': 'a.jpg'}) + '\n')
  with pytest.raises(ValueError, match=r'bad\.jsonl:1: neither a referring entry'):
    PsalmReader(path, image_root)


def test_image_size_must_match_masks(tmp_path, image_root):
  path = tmp_path / 'val.json'
  path.write_text(json.dumps([_psalm_entry('a.jpg', ['x'], [], height=10, width=16)]))
  with pytest.raises(ValueError, match=r'val\.json\[0\]: image .*a\.jpg is 16x12 but its '
                                       r'masks are 16x10'):
    PsalmReader(path, image_root)[0]


# ---- RefCOCO / gRefCOCO ----

@pytest.fixture
def refer_root(tmp_path):
  return syn.write_refer(tmp_path / 'refer')


def test_refcoco_split_selection(refer_root):
  images = refer_root / 'images' / 'train2014'
  reader = RefCocoReader(refer_root / 'refcoco', 'val', image_root=images)
  refs = refer_root / 'refcoco' / 'refs(unc).p'
  assert len(reader) == 2
  assert reader.skipped == [(f'{refs}:ref_id=3', SKIP_NO_SENTENCES)]
  bar, box = reader[0], reader[1]
  assert bar.origin == f'{refs}:ref_id=1' and bar.sentences == ['right bar']
  assert bar.image == str(images / 'COCO_train2014_000000000001.jpg')
  np.testing.assert_array_equal(bar.masks[0], _box(12, 16, (0, 11), (10, 11)))
  np.testing.assert_array_equal(box.masks[0], _box(8, 10, (1, 3), (1, 4)))
  train = RefCocoReader(refer_root / 'refcoco', 'train', image_root=images)
  assert len(train) == 1 and train[0].sentences == ['left square', 'small box']


def test_grefcoco_multi_and_no_target(refer_root):
  reader = RefCocoReader(refer_root / 'grefcoco', 'val')  # images found beside it
  both, nobody = reader[0], reader[1]
  assert both.masks[0].sum() == syn.PIXELS[101] + syn.PIXELS[102]
  assert nobody.sentences == ['a purple cow'] and not nobody.has_target
  assert nobody.masks[0].shape == (12, 16)


def test_refcoco_errors(refer_root, tmp_path):
  images = refer_root / 'images' / 'train2014'
  with pytest.raises(EmptyDatasetError, match=r"refs\(unc\)\.p: no refs in split 'test'; its "
                                              r"splits are \['train', 'val'\]"):
    RefCocoReader(refer_root / 'refcoco', 'test', image_root=images)
  grefs = refer_root / 'grefcoco' / 'grefs(unc).json'
  bad = [dict(syn.GREFS[1], no_target=False)]
  grefs.write_text(json.dumps(bad))
  with pytest.raises(ValueError, match=r'ref_id=11: no_target=False and ann_id \[-1\] disagree'):
    RefCocoReader(refer_root / 'grefcoco', 'val', image_root=images)
  grefs.write_text(json.dumps([dict(syn.GREFS[0], ann_id=[101, 999])]))
  with pytest.raises(ValueError, match=r'ref_id=10: annotation 999 is not in .*instances\.json'):
    RefCocoReader(refer_root / 'grefcoco', 'val', image_root=images)
  with pytest.raises(FileNotFoundError, match=r'none of .*refs\(unc\)\.p'):
    RefCocoReader(tmp_path, 'val', image_root=images)
  (refer_root / 'images').rename(refer_root / 'elsewhere')
  with pytest.raises(FileNotFoundError, match='no COCO train2014 image folder.*pass image_root'):
    RefCocoReader(refer_root / 'refcoco', 'val')
  images = refer_root / 'elsewhere' / 'train2014'
  (images / 'COCO_train2014_000000000002.jpg').unlink()
  with pytest.raises(FileNotFoundError, match=r'ref_id=2: image not found: .*000002\.jpg'):
    RefCocoReader(refer_root / 'refcoco', 'val', image_root=images)[1]


def test_refs_pickle_is_restricted(tmp_path):
  path = tmp_path / 'refs(unc).p'
  path.write_bytes(pickle.dumps([np.int64(3)]))
  with pytest.raises(ValueError, match=r'refs\(unc\)\.p: cannot read the refs.*numpy'):
    load_refs(path)


# ---- custom jsonl ----

def _write_custom(tmp_path, lines):
  path = tmp_path / 'data' / 'train.jsonl'
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_text('\n'.join(json.dumps(line) for line in lines) + '\n')
  return path


@pytest.fixture
def custom_files(tmp_path):
  data = tmp_path / 'data'
  syn.write_image(data / 'img' / 'a.jpg', 16, 12)
  grey = _box(12, 16, (0, 1), (0, 0)).astype(np.uint8)  # 0/1 grey, 2 px
  Image.fromarray(grey).save(data / 'grey.png')
  rgb = np.zeros((12, 16, 3), np.uint8)
  rgb[5, 5:8, 2] = 7  # dark blue, 3 px
  Image.fromarray(rgb).save(data / 'rgb.png')
  palette = Image.fromarray(_box(12, 16, (9, 11), (14, 15)).astype(np.uint8), 'P')  # 6 px
  palette.putpalette([0, 0, 0, 200, 10, 10] + [0] * 762)
  palette.save(data / 'pal.png')
  return data


def test_custom_reader(tmp_path, custom_files):
  conversation = [{'from': 'human', 'value': '<image>\nSegment a, then b.'},
                  {'from': 'gpt', 'value': 'a: <mask>. b: <mask>.'}]
  path = _write_custom(tmp_path, [
      {'image': 'img/a.jpg', 'mask': 'grey.png', 'expressions': ['the thing'], 'id': 7},
      {'image': 'img/a.jpg', 'mask': ['rgb.png', 'pal.png'], 'expressions': ['all of it']},
      {'image': 'img/a.jpg', 'mask': ['rgb.png', 'pal.png'], 'conversation': conversation},
  ])
  reader = CustomReader(path)
  single, merged, chat = reader[0], reader[1], reader[2]
  assert single.image == str(custom_files / 'img' / 'a.jpg') and single.masks[0].sum() == 2
  assert merged.sentences == ['all of it'] and len(merged.masks) == 1
  assert merged.masks[0].sum() == 3 + 6
  assert [m.sum() for m in chat.masks] == [3, 6] and chat.conversation == conversation
  assert chat.origin == f'{path}:3' and chat.sentences == []


def test_custom_reader_errors(tmp_path, custom_files):
  def reader_of(*lines):
    return CustomReader(_write_custom(tmp_path, list(lines)))

  with pytest.raises(ValueError, match=r"train\.jsonl:1: unknown keys \['expression'\]"):
    reader_of({'image': 'img/a.jpg', 'mask': 'grey.png', 'expression': ['x']})
  with pytest.raises(ValueError, match=r'train\.jsonl:2: "expressions" must be a non-empty'):
    reader_of({'image': 'img/a.jpg', 'mask': 'grey.png', 'expressions': ['x']},
              {'image': 'img/a.jpg', 'mask': 'grey.png', 'expressions': []})
  with pytest.raises(ValueError, match=r'1 <mask> placeholders for 2 mask'):
    reader_of({'image': 'img/a.jpg', 'mask': ['grey.png', 'rgb.png'],
               'conversation': [{'from': 'human', 'value': '<image>\nx'},
                                {'from': 'gpt', 'value': '<mask>'}]})
  with pytest.raises(FileNotFoundError, match=r'train\.jsonl:1: mask not found: .*nope\.png'):
    reader_of({'image': 'img/a.jpg', 'mask': 'nope.png', 'expressions': ['x']})[0]
  Image.new('L', (5, 5)).save(custom_files / 'small.png')
  with pytest.raises(ValueError, match=r'a\.jpg is 16x12 but its masks are 5x5'):
    reader_of({'image': 'img/a.jpg', 'mask': 'small.png', 'expressions': ['x']})[0]
  (tmp_path / 'data' / 'train.jsonl').write_text('\n')
  with pytest.raises(EmptyDatasetError, match=r'train\.jsonl: no samples'):
    CustomReader(tmp_path / 'data' / 'train.jsonl')


# ---- as grain sources ----

def test_readers_are_picklable_grain_sources(refer_root):
  reader = RefCocoReader(refer_root / 'grefcoco', 'val')
  copy = pickle.loads(pickle.dumps(reader))
  np.testing.assert_array_equal(copy[0].masks[0], reader[0].masks[0])
  dataset = grain.MapDataset.source(reader).map(lambda s: int(s.masks[0].sum()))
  assert list(dataset) == [40, 0]
