"""The RefCOCO tfds builder writes array_record without TensorFlow and reads back equal
samples."""

import pickle

import numpy as np
import pytest
import tensorflow_datasets as tfds

from argenseg_jax.image_io import read_rgb
from data_pipelines.refcoco_reader import RefCocoReader
from data_pipelines.refcoco_tfds import ArgensegRefcoco, TfdsRefSource
from tests import synthetic_refer as syn


@pytest.fixture(scope='module')
def built(tmp_path_factory):
  """`(refer_root, data_dir)` with the refcoco and grefcoco configs prepared."""
  root = syn.write_refer(tmp_path_factory.mktemp('refer'))
  data_dir = tmp_path_factory.mktemp('tfds')
  for config in ('refcoco', 'grefcoco'):
    ArgensegRefcoco(config=config, data_dir=data_dir).download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=root))
  return root, data_dir


@pytest.mark.parametrize('config,folder,split', [('refcoco', 'refcoco', 'val'),
                                                 ('refcoco', 'refcoco', 'train'),
                                                 ('grefcoco', 'grefcoco', 'val')])
def test_round_trip(built, config, folder, split):
  root, data_dir = built
  expected = RefCocoReader(root / folder, split, image_root=root / 'images' / 'train2014')
  source = TfdsRefSource(data_dir, config, split)
  assert len(source) == len(expected)
  for i in range(len(source)):
    got, want = source[i], expected[i]
    assert (got.origin, got.sentences) == (want.origin, want.sentences)
    np.testing.assert_array_equal(got.image, np.asarray(read_rgb(want.image)))
    assert len(got.masks) == 1 and got.masks[0].dtype == bool
    np.testing.assert_array_equal(got.masks[0], want.masks[0])


def test_source_is_picklable_and_files_are_array_record(built, tmp_path):
  _, data_dir = built
  source = pickle.loads(pickle.dumps(TfdsRefSource(data_dir, 'grefcoco', 'val')))
  assert [s.has_target for s in (source[0], source[1])] == [True, False]
  assert source[1].image.shape == (12, 16, 3)
  assert list(data_dir.glob('argenseg_refcoco/grefcoco/1.0.0/*-val.array_record-*'))
  with pytest.raises(ValueError, match="Unknown split 'testA'"):
    TfdsRefSource(data_dir, 'grefcoco', 'testA')
  with pytest.raises(FileNotFoundError, match='argenseg_refcoco/refcocog is not prepared'):
    TfdsRefSource(tmp_path, 'refcocog', 'val')
