"""Reading the JSON file that identifies a directory, with errors that say what is wrong."""

import json
import pathlib


def read_dir_json(path, name: str, what: str, error: type[Exception] = FileNotFoundError) -> dict:
  """`path/name` parsed; FileNotFoundError if `path` is no directory, `error` (naming
  `what` the directory should be) if the file is missing."""
  path = pathlib.Path(path)
  if not path.is_dir():
    raise FileNotFoundError(f'{what} not found: {path}')
  file = path / name
  if not file.is_file():
    raise error(f'{path} has no {name}: not a {what}.')
  return json.loads(file.read_text())
