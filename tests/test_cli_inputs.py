"""Inputs that must not hurt: relative paths, directories we did not write, output paths
checked before the model loads, one-line errors for bad input, honest endings."""

import json
import pathlib
import shutil

import numpy as np
import pytest
from safetensors.numpy import save_file

from argenseg_jax import bundled, cli, pretrained
from argenseg_jax.checkpoints import atomic
from argenseg_jax.checkpoints.torch_files import CheckpointError
from argenseg_jax.config_args import load_config
from argenseg_jax.evaluation import evaluator
from argenseg_jax.models import var_vqvae_io
from argenseg_jax.segmenter import Segmenter
from argenseg_jax.tokenizer import BYTE_TOKENIZER_FILE
from tests.helpers import SMALL_VQVAE, to_var_state_dict

TINY = str(pathlib.Path(__file__).resolve().parent.parent / 'configs' / 'train_tiny.py')
NOWHERE = 'no/such/checkpoint'  # outputs and arguments are refused before it is looked at


def _fails(argv, capsys, error: str) -> str:
  """Runs `argenseg ARGV`, which must exit 2 with one line holding `error`."""
  try:
    code = cli.main(argv)
  except SystemExit as e:  # argparse
    code = e.code
  err = capsys.readouterr().err
  assert code == 2, (argv, err)
  assert error in err and len(err.strip().splitlines()) == 1, (argv, err)
  return err


@pytest.fixture
def small_copy(tmp_path, monkeypatch):
  """A copy of the bundled small ARGenSeg at the relative path 'ck' (cwd: tmp_path)."""
  monkeypatch.chdir(tmp_path)
  return pathlib.Path(shutil.copytree(bundled.ARGENSEG_SMALL, 'ck'))


# 3. Relative checkpoint paths (the trainer's relative workdir: tests/test_training.py).

def test_relative_checkpoint_paths_load_and_save(small_copy):
  Segmenter.load('ck')  # what `argenseg segment --checkpoint ck` does first
  model, cfg = pretrained.load_pretrained('ck')
  out = pretrained.save_pretrained(model, cfg, 'runs/export', tokenizer_dir='ck')
  assert out == small_copy.absolute().parent / 'runs' / 'export'
  again, _ = pretrained.load_pretrained('runs/export')
  np.testing.assert_array_equal(again.pos_1LC[...], model.pos_1LC[...])


# 4. Directories we did not write are refused, never emptied.

@pytest.fixture
def var_safetensors(tmp_path, small_model):
  path = tmp_path / 'vae.safetensors'
  save_file(to_var_state_dict(*small_model), str(path))
  return path


def test_convert_never_deletes_files_it_did_not_write(var_safetensors, tmp_path, monkeypatch,
                                                       capsys):
  monkeypatch.chdir(tmp_path)
  user = tmp_path / 'user'
  user.mkdir()
  (user / 'notes.txt').write_text('mine')
  convert = ['convert', 'vae', '--from', str(var_safetensors), '--config', SMALL_VQVAE, '--to']
  _fails(convert + ['user'], capsys, 'user is not empty (notes.txt)')
  _fails(['convert', 'vae', '--from', 'missing.pth', '--to', 'user'], capsys,  # checked first
         '--overwrite to replace our files in it')
  _fails(convert + ['user/notes.txt'], capsys, 'notes.txt is a file, not a folder')
  assert sorted(p.name for p in user.iterdir()) == ['notes.txt']
  assert cli.main(convert + ['user', '--overwrite']) == 0
  assert (user / 'notes.txt').read_text() == 'mine'
  assert var_vqvae_io.load_vqvae(user)[1].to_dict() == load_config(SMALL_VQVAE).to_dict()
  for _ in range(2):  # a directory of ours is replaced as a whole, relative paths work
    assert cli.main(convert + ['ours']) == 0
  assert sorted(p.name for p in tmp_path.iterdir()) == ['ours', 'user', 'vae.safetensors']


def test_overwrite_replaces_our_entries_and_keeps_the_others(tmp_path):
  fmt = atomic.DirFormat('test/format', 'meta.json', frozenset({'meta.json', 'a', 'b'}))
  out = tmp_path / 'out'
  out.mkdir()
  for name, text in (('b', 'stale'), ('mine.txt', 'mine')):
    (out / name).write_text(text)
  with pytest.raises(atomic.TargetError, match='not empty'):
    atomic.check_target(out, fmt)
  with atomic.atomic_directory(out, fmt, overwrite=True) as tmp:
    (tmp / 'meta.json').write_text(json.dumps({'format': 'test/format'}))
    (tmp / 'a').write_text('new')
  assert {p.name: p.read_text() for p in out.iterdir()} == {
      'meta.json': '{"format": "test/format"}', 'a': 'new', 'mine.txt': 'mine'}
  (out / 'mine.txt').unlink()
  assert fmt.owns(out) and atomic.check_target(out, fmt) == out
  assert sorted(p.name for p in tmp_path.iterdir()) == ['out']


# 5. Output paths are checked before the model is loaded; rows never share a file.

def test_segment_outputs_are_checked_before_loading(tmp_path, monkeypatch, capsys):
  monkeypatch.chdir(tmp_path)
  pathlib.Path('file').write_text('')
  pathlib.Path('folder.png').mkdir()
  segment = ['segment', '--checkpoint', NOWHERE, '--image', 'a.png', '--expression', 'x']
  for args, error in [(['--out', 'm.txt'], '--out m.txt: a PNG is written there'),
                      (['--out', 'file/m.png'], 'file is a file, not a folder'),
                      (['--out', 'folder.png'], '--out folder.png is a folder'),
                      (['--overlay', 'a_mask.png'], '--out writes that file too'),
                      (['--out', 'm.png', '--overlay', 'm_1.png'], 'name of mask 1 of --out'),
                      (['--previews', 'file'], '--previews file is a file')]:
    _fails(segment + args, capsys, error)
  _fails(['vae-roundtrip', '--out', 'rec.jpg'], capsys, '--out rec.jpg: a PNG')
  _fails(['eval', '--checkpoint', NOWHERE, '--data', 'synthetic:seed=0,n=2', '--out', 'file'],
         capsys, '--out file is a file')


def test_batch_rows_get_their_own_files(tmp_path, monkeypatch, capsys):
  monkeypatch.chdir(tmp_path)
  batch = pathlib.Path('jobs.jsonl')
  batch.write_text('{"image": "dir/a.png", "expression": "x"}\n\n'
                   '{"image": "a.png", "expression": "y"}\n')
  args = cli.build_parser().parse_args(['segment', '--batch', str(batch), '--previews', 'pv'])
  jobs = cli.segment.requests_of(args)  # pylint: disable=protected-access
  assert [(str(j.out), str(j.previews)) for j in jobs] == [
      ('a_line1_mask.png', 'pv/line1'), ('a_line3_mask.png', 'pv/line3')]
  cli.segment.check_outputs(jobs, None)  # pylint: disable=protected-access
  segment = ['segment', '--checkpoint', NOWHERE, '--batch', str(batch)]
  for rows, error in [
      ('{"image": "a.png", "expression": "x", "out": "m.png"}\n' * 2,
       'jobs.jsonl:2: "out" m.png: jobs.jsonl:1: "out" writes that file too'),
      ('{"image": "a.png", "expression": "x", "out": "m.png"}\n'
       '{"image": "b.png", "expression": "x", "out": "m_2.png"}\n',
       'jobs.jsonl:2: "out" m_2.png: that is the name of mask 2 of jobs.jsonl:1'),
      ('{"image": "a.png", "expression": "x", "out": "m.jpg"}\n', 'jobs.jsonl:1: "out" m.jpg')]:
    batch.write_text(rows)
    _fails(segment, capsys, error)
  _fails(segment + ['--overlay', 'o.png'], capsys, '--overlay is about one image')


# 6. One line, exit status 2, for every refused input; --debug shows the traceback.

def test_bad_input_is_one_line(tmp_path, monkeypatch, capsys):
  monkeypatch.chdir(tmp_path)
  segment = ['segment', '--checkpoint', NOWHERE, '--image', 'a.png']
  _fails(segment + ['--expression', 'x', '--max-new-tokens', '-1'], capsys,
         'argument --max-new-tokens: must be an integer >= 1')
  _fails(segment + ['--expression', 'x', '--batch-size', '0'], capsys, '--batch-size')
  _fails(segment + ['--expression', ' '], capsys, '--expression is empty: name what to segment')
  _fails(segment + ['--prompt', ''], capsys, '--prompt is empty')
  batch = pathlib.Path('jobs.jsonl')
  for row, error in [('{"image": 5, "expression": "x"}', 'jobs.jsonl:1: "image" is 5, not text'),
                     ('{"image": "a.png", "expression": ""}',
                      'jobs.jsonl:1: "expression" is empty'),
                     ('{"image": "a.png", "expresion": "x"}', 'jobs.jsonl:1: expected'),
                     ('["a.png"]', 'jobs.jsonl:1: expected'), ('{', 'jobs.jsonl:1: not JSON')]:
    batch.write_text(row + '\n')
    _fails(['segment', '--checkpoint', NOWHERE, '--batch', str(batch)], capsys, error)
  plan = ['plan', '--mesh', 'fsdp=8', '--batch', '8', '--device']
  _fails(plan + ['0GB'], capsys, "device memory must be more than 0, got '0GB'")
  _fails(plan + ['h100', '--mfu', '0'], capsys, 'argument --mfu: must be a number in (0, 1]')
  pathlib.Path('file').write_text('')
  _fails(['train', '--config', TINY, '--workdir', 'file'], capsys, 'workdir')
  with pytest.raises(ValueError, match='a PNG is written there'):
    cli.main(segment + ['--expression', 'x', '--out', 'm.txt', '--debug'])
  monkeypatch.setenv('ARGENSEG_DEBUG', '1')
  with pytest.raises(ValueError, match='is empty'):
    cli.main(segment + ['--expression', ''])


def test_damaged_checkpoints_are_named(small_copy, capsys):
  meta = small_copy / pretrained.META_FILE
  text = meta.read_text()
  meta.write_text(text[:20])
  with pytest.raises(CheckpointError, match=f'{meta.absolute()} is not valid JSON'):
    pretrained.load_pretrained('ck')
  segment = ['segment', '--checkpoint', 'ck', '--image', str(bundled.SCENE), '--expression', 'x']
  _fails(segment, capsys, f'{meta.absolute()} is not valid JSON')
  meta.write_text(text)
  tokens = small_copy / BYTE_TOKENIZER_FILE
  tokens_text = tokens.read_text()
  tokens.write_text(tokens_text[:10])
  _fails(segment, capsys, f'{tokens} is not valid JSON')
  tokens.write_text(tokens_text)
  biggest = max((p for p in (small_copy / 'params').rglob('*') if p.is_file()),
                key=lambda p: p.stat().st_size)
  biggest.write_bytes(biggest.read_bytes()[:biggest.stat().st_size // 2])
  err = _fails(segment, capsys, 'ck/params cannot be read (truncated or damaged?)')
  assert 'Traceback' not in err


# 7. Honest endings.

def test_preempted_training_exits_75(tmp_path, monkeypatch, capsys):
  from argenseg_jax.training import trainer  # pylint: disable=import-outside-toplevel

  def preempted(config, workdir, inputs):
    del inputs
    raise trainer.Preempted(3, config.num_steps, pathlib.Path(workdir) / 'checkpoints')
  monkeypatch.setattr(trainer, 'train', preempted)
  assert cli.main(['train', '--config', f'{TINY}:steps=24', '--workdir', str(tmp_path)]) == 75
  assert capsys.readouterr().err.strip() == (
      f'argenseg train: stopped early by SIGTERM at step 3 of 24; saved step 3 in '
      f'{tmp_path}/checkpoints. Rerun the same command to resume.')


def test_eval_of_an_empty_data_set_is_an_error(tmp_path, capsys):
  _fails(['eval', '--checkpoint', NOWHERE, '--data', 'synthetic:seed=1,n=0', '--out',
          str(tmp_path)], capsys, '--data synthetic:seed=1,n=0 holds no samples')
  with pytest.raises(ValueError, match='nothing to evaluate'):
    evaluator.evaluate(None, [], batch_size=8, out_dir=tmp_path, progress=False)
  assert not list(tmp_path.iterdir())
