"""Checks of command-line input that run before any model is loaded: numbers in their
range (argparse types) and output paths that can be written."""

import argparse
import os
import pathlib


def _number(text: str, kind: type, ok, want: str):
  try:
    value = kind(text)
  except ValueError:
    value = None
  if value is None or not ok(value):
    raise argparse.ArgumentTypeError(f'must be {want}, got {text!r}')
  return value


def positive_int(text: str) -> int:
  """argparse type: an integer >= 1."""
  return _number(text, int, lambda v: v >= 1, 'an integer >= 1')


def non_negative_int(text: str) -> int:
  """argparse type: an integer >= 0."""
  return _number(text, int, lambda v: v >= 0, 'an integer >= 0')


def fraction(text: str) -> float:
  """argparse type: a number in (0, 1]."""
  return _number(text, float, lambda v: 0 < v <= 1, 'a number in (0, 1]')


def _check_writable_in(path: pathlib.Path, what: str, target: pathlib.Path) -> None:
  """Raises unless the nearest existing folder at or above `path` is a folder we may
  write in (missing folders below it are created when `target` is written)."""
  path = path.absolute()
  while not path.exists():
    path = path.parent
  if not path.is_dir():
    raise ValueError(f'{what} {target}: {path} is a file, not a folder.')
  if not os.access(path, os.W_OK | os.X_OK):
    raise ValueError(f'{what} {target}: no permission to write in {path}.')


def png_path(path, what: str) -> pathlib.Path:
  """`path` once it is clear that a PNG can be written there; `what` names it in errors
  (e.g. '--out')."""
  path = pathlib.Path(path)
  if path.suffix.lower() != '.png':
    raise ValueError(f'{what} {path}: a PNG is written there; give a name ending in .png.')
  if path.is_dir():
    raise ValueError(f'{what} {path} is a folder; give a file name ending in .png.')
  _check_writable_in(path.parent, what, path)
  return path


def folder_path(path, what: str) -> pathlib.Path:
  """`path` once it is clear that files can be written in that folder (made if needed)."""
  path = pathlib.Path(path)
  if path.exists() and not path.is_dir():
    raise ValueError(f'{what} {path} is a file, not a folder.')
  _check_writable_in(path, what, path)
  return path
