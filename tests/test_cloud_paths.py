"""Cloud paths (`user_input.path`): gs:// workdirs, checkpoints, exports, inputs and
outputs go through `epath`, never through `pathlib` or `open()` (which would write a local
folder `gs:/bucket/...`).

No bucket is reachable offline, so the `gcs` fixture serves `gs://bucket/KEY` from
`ROOT/bucket/KEY` on the local disk, behind the backends a real gs:// path uses:
- epath's fsspec backend (epath's choice when tensorflow is not installed) gets an fsspec
  `DirFileSystem` rooted at ROOT in place of gcsfs: every `epath.Path('gs://...')` call
  (open, exists, listdir, rename, ...) goes through fsspec with its gs:// path;
- orbax's tensorstore kvstore for gs:// (the `gcs` driver) becomes the `file` driver at
  the same place, and its bucket lookup (google-cloud-storage, asking for a hierarchical
  namespace) a plain bucket; the rest of orbax's gs:// code (commit files instead of
  renames) runs as on GCS.
What is not covered: gcsfs and tensorstore's network code, and GCS's own semantics
(directories that exist only through their objects). Every test checks that nothing
appeared under the working directory.
"""

import json
import os
import pathlib
import re
import shutil
import signal
import types

import numpy as np
import pytest
from etils.epath import backend, gpath
from fsspec.implementations.dirfs import DirFileSystem
from fsspec.implementations.local import LocalFileSystem
from orbax.checkpoint._src.path import gcs_utils
from PIL import Image
from tensorboardX import record_writer

from argenseg_jax import bundled, cli, pretrained, user_input
from argenseg_jax.checkpoints import params
from argenseg_jax.config_args import load_config
from argenseg_jax.models import var_vqvae_io
from argenseg_jax.tokenizer import load_tokenizer
from argenseg_jax.training import metric_writer, trainer
from data_pipelines import data_spec, train_pipeline
from data_pipelines.mixture import Mixture
from tests.conftest import REPO
from tests.test_training import compile_cache

TINY = str(REPO / 'configs' / 'train_tiny.py')
RUN = 'gs://bucket/run'


class _FakeGCS(DirFileSystem):
  """`gs://KEY` (and `gcs://KEY`) as `ROOT/KEY`."""
  protocol = ('gs', 'gcs')


@pytest.fixture
def gcs(tmp_path, monkeypatch):
  """The local folder behind `gs://bucket`; the working directory is an empty folder."""
  root = tmp_path / 'gcs'
  (root / 'bucket').mkdir(parents=True)
  fake = _FakeGCS(path=str(root), fs=LocalFileSystem())
  get = backend.fsspec_backend._get_filesystem  # pylint: disable=protected-access
  monkeypatch.setattr(backend.fsspec_backend, '_get_filesystem',
                      lambda name: fake if name in ('gs', 'gcs') else get(name))
  monkeypatch.setattr(gpath, '_is_tf_installed', lambda: False)
  monkeypatch.setattr(gcs_utils, 'get_kvstore_for_gcs', lambda path: {
      'driver': 'file', 'path': str(root / str(path).removeprefix('gs://'))})
  monkeypatch.setattr(gcs_utils, 'get_bucket',
                      lambda name: types.SimpleNamespace(hierarchical_namespace_enabled=False))
  monkeypatch.setattr(record_writer, 'REGISTERED_FACTORIES',
                      dict(record_writer.REGISTERED_FACTORIES))
  (tmp_path / 'cwd').mkdir()
  monkeypatch.chdir(tmp_path / 'cwd')
  return root / 'bucket'


def _nothing_local():
  """Nothing was written under the working directory (a `gs:` folder, say)."""
  assert not os.listdir('.'), os.listdir('.')


def _fails(argv, capsys, error: str) -> None:
  """`argenseg ARGV` exits 2 with one line holding `error`."""
  assert cli.main(argv) == 2
  err = capsys.readouterr().err
  assert error in err and len(err.strip().splitlines()) == 1, err


def test_paths_keep_urls_and_make_local_paths_absolute(tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)
  for text in ('gs://bucket/run/x.png', 's3://bucket/x'):
    for absolute in (False, True):
      assert str(user_input.path(text, absolute)) == text
    assert not user_input.is_local(text)
  assert user_input.path('a/b') == pathlib.Path('a/b')
  assert user_input.path('a/b', absolute=True) == tmp_path / 'a' / 'b'
  assert user_input.path(tmp_path / 'c') == tmp_path / 'c' and user_input.is_local('a:b')
  assert str(user_input.path('gs://bucket/run') / 'export') == 'gs://bucket/run/export'
  with pytest.raises(ValueError, match='unsupported URL scheme'):
    user_input.path('memory://x')
  assert user_input.join('gs://bucket/data', 'a.png') == 'gs://bucket/data/a.png'
  assert user_input.join('/data', 'gs://other/a.png') == 'gs://other/a.png'
  assert user_input.join('gs://bucket/data', '/abs/a.png') == '/abs/a.png'


def test_cloud_workdir_is_checked_first_and_never_local(gcs, capsys):
  """`argenseg train --workdir gs://...`: the checks of a local workdir, then the files of
  the run in the bucket (the tokenizer before the batch size is found wrong)."""
  train = ['train', '--config', f'{TINY}:steps=2,samples=8', '--config.batch_size=3']
  _fails(train + ['--workdir', 'gs://nobucket/run'], capsys,
         'its bucket gs://nobucket does not exist')
  (gcs / 'file').write_text('')
  _fails(train + ['--workdir', 'gs://bucket/file'], capsys,
         'workdir gs://bucket/file is a file, not a folder')
  (gcs / 'run' / 'export').mkdir(parents=True)
  (gcs / 'run' / 'export' / 'notes.txt').write_text('mine')
  _fails(train + ['--workdir', RUN], capsys, 'gs://bucket/run/export is not empty (notes.txt)')
  shutil.rmtree(gcs / 'run' / 'export')
  _fails(train + ['--workdir', RUN], capsys, 'batch_size 3 must be a multiple')
  assert json.loads((gcs / 'run' / 'byte_tokenizer.json').read_text())['added_tokens']
  _nothing_local()


def test_metrics_are_rewritten_in_the_cloud(gcs):
  writer = metric_writer.MetricWriter(RUN)
  writer.write(3, {'loss': 1.5})
  assert (gcs / 'run' / 'metrics.jsonl').read_text() == '{"step": 3, "loss": 1.5}\n'
  writer.write(7, {'loss': 0.5})  # within REWRITE_S of the last rewrite: kept until close()
  assert (gcs / 'run' / 'metrics.jsonl').read_text().count('\n') == 1
  writer.close()
  writer = metric_writer.MetricWriter(RUN)  # a resumed run appends
  writer.write(8, {'loss': 0.25})
  writer.close()
  assert [json.loads(line)['step'] for line in
          (gcs / 'run' / 'metrics.jsonl').read_text().splitlines()] == [3, 7, 8]
  events = list((gcs / 'run' / 'tensorboard').glob('events.out.tfevents.*'))
  assert events and all(b'loss' in e.read_bytes() for e in events)
  _nothing_local()


def test_checkpoint_directories_in_the_cloud(gcs, capsys):
  """The bundled mask VQ-VAE read from a bucket and written back to it: atomically,
  never over a directory we did not write, no temporaries left."""
  shutil.copytree(bundled.MASK_VQVAE, gcs / 'vae')
  model, cfg = var_vqvae_io.load_vqvae('gs://bucket/vae')
  (gcs / 'mine').mkdir()
  (gcs / 'mine' / 'notes.txt').write_text('mine')
  _fails(['convert', 'vae', '--from', 'gs://bucket/none.pth', '--to', 'gs://bucket/mine'],
         capsys, 'gs://bucket/mine is not empty (notes.txt)')
  for _ in range(2):  # the second time, ours is replaced whole
    assert str(var_vqvae_io.save_vqvae(model, cfg, 'gs://bucket/copy')) == 'gs://bucket/copy'
  var_vqvae_io.save_vqvae(model, cfg, 'gs://bucket/mine', overwrite=True)  # theirs kept
  assert sorted(os.listdir(gcs / 'copy')) == ['config.json', 'params.safetensors']
  assert sorted(os.listdir(gcs / 'mine')) == ['config.json', 'notes.txt', 'params.safetensors']
  assert sorted(os.listdir(gcs)) == ['copy', 'mine', 'vae']
  again = params.flat_params(var_vqvae_io.load_vqvae('gs://bucket/copy')[0])
  for key, value in params.flat_params(model).items():
    np.testing.assert_array_equal(again[key], value, err_msg=key)
  for args, error in [(['--out', 'gs://bucket/copy/config.json/r.png'],
                       'gs://bucket/copy/config.json is a file, not a folder'),
                      (['--out', 'gs://bucket/r.png', '--previews', 'gs://bucket/mine/notes.txt'],
                       '--previews gs://bucket/mine/notes.txt is a file')]:
    _fails(['vae-roundtrip', '--checkpoint', 'gs://bucket/copy', *args], capsys, error)
  _nothing_local()


def test_segment_reads_and_writes_the_cloud(gcs, capsys):
  """`argenseg segment` with the checkpoint, the image and a target in the bucket writes
  its mask and overlay there."""
  shutil.copytree(bundled.ARGENSEG_SMALL, gcs / 'small')
  for name in ('scene.png', 'scene_target.png'):
    shutil.copy(bundled.ASSETS / name, gcs / name)
  assert cli.main(['segment', '--checkpoint', 'gs://bucket/small', '--image',
                   'gs://bucket/scene.png', '--expression', bundled.SCENE_EXPRESSION,
                   '--target', 'gs://bucket/scene_target.png', '--out',
                   'gs://bucket/out/mask.png', '--overlay', 'gs://bucket/out/overlay.png']) == 0
  printed = capsys.readouterr().out
  assert 'mask -> gs://bucket/out/mask.png' in printed, printed
  assert 'overlay -> gs://bucket/out/overlay.png' in printed
  assert float(re.search(r'mask IoU with \S+: ([\d.]+)', printed)[1]) >= 0.85
  assert np.asarray(Image.open(gcs / 'out' / 'mask.png')).shape == (128, 128)
  assert np.asarray(Image.open(gcs / 'out' / 'overlay.png')).shape == (128, 128, 3)
  _fails(['segment', '--checkpoint', 'gs://bucket/small', '--image', 'gs://bucket/scene.png',
          '--expression', 'x', '--out', 'gs://bucket/out/mask.png/m.png'], capsys,
         'gs://bucket/out/mask.png is a file, not a folder')
  _nothing_local()


def test_a_meta_file_mixture_in_the_cloud(gcs):
  """The bundled miniature in the bucket: the meta file, its annotations, images, masks
  and panoptic PNGs are all read through gs:// (training and evaluation views)."""
  shutil.copytree(bundled.MIXTURE_TINY, gcs / 'mini')
  local = Mixture(bundled.MIXTURE_TINY / 'meta.json', bundled.MIXTURE_TINY)
  cloud = Mixture('gs://bucket/mini/meta.json', 'gs://bucket/mini')
  assert cloud.counts == local.counts
  for k in range(0, len(cloud), 5):
    a, b = cloud[k], local[k]
    assert a.origin.startswith('gs://bucket/mini/anns/') and a.conversation == b.conversation
    for x, y in zip(a.masks, b.masks, strict=True):
      np.testing.assert_array_equal(x, y)
  view = data_spec.open_source('meta:gs://bucket/mini/meta.json@gs://bucket/mini')
  assert view.groups == ('refcoco', 'gref', 'coco_seg', 'ade', 'lisa_inst')
  _nothing_local()


STEPS = 6


def _config():
  """The tiny config of `tests/test_training.py`, shorter, with its export."""
  config = load_config(f'{TINY}:steps={STEPS},samples=64')
  config.mesh.update(data=2, fsdp=2, tensor=2)
  return config


def _losses(metrics_file: pathlib.Path) -> dict[int, float]:
  return {r['step']: r['loss'] for r in map(json.loads, metrics_file.read_text().splitlines())}


@pytest.mark.slow
def test_cloud_training_resumes_exactly_and_exports(gcs, tmp_path, monkeypatch):
  """A run in gs://bucket/run stopped by SIGTERM at step 3 and resumed logs the losses of
  an uninterrupted local run, and its export loads from the bucket with the same
  parameters."""
  config = _config()
  with compile_cache(tmp_path / 'xla_cache'):
    trainer.train(config, tmp_path / 'local', train_pipeline.training_inputs(config))
    write = trainer.MetricWriter.write

    def write_then_term(self, step, values):  # a preemption notice, seen after step 3
      write(self, step, values)
      if step == 2:
        os.kill(os.getpid(), signal.SIGTERM)
    with monkeypatch.context() as patch:
      patch.setattr(trainer.MetricWriter, 'write', write_then_term)
      with pytest.raises(trainer.Preempted, match=f'saved step 3 in {RUN}/checkpoints'):
        trainer.train(config, RUN, train_pipeline.training_inputs(config))
    assert sorted(os.listdir(gcs / 'run' / 'checkpoints')) == ['3']
    trainer.train(config, RUN, train_pipeline.training_inputs(config))
  reference = _losses(tmp_path / 'local' / 'metrics.jsonl')
  assert sorted(reference) == list(range(1, STEPS + 1))
  resumed = _losses(gcs / 'run' / 'metrics.jsonl')
  assert sorted(resumed) == sorted(reference)
  for step, loss in resumed.items():
    assert loss == pytest.approx(reference[step], rel=1e-6, abs=1e-6), step
  model, cfg = pretrained.load_pretrained(f'{RUN}/export')
  local, local_cfg = pretrained.load_pretrained(tmp_path / 'local' / 'export')
  assert cfg.to_dict() == local_cfg.to_dict()
  ours, theirs = params.flat_params(model), params.flat_params(local)
  assert sorted(ours) == sorted(theirs)
  for key, value in ours.items():
    np.testing.assert_allclose(value, theirs[key], rtol=1e-5, atol=1e-6, err_msg=key)
  assert load_tokenizer(f'{RUN}/export').encode('a') == load_tokenizer(
      tmp_path / 'local' / 'export').encode('a')
  assert os.listdir(gcs / 'run' / 'tensorboard')
  _nothing_local()
