"""Reading the JSON file that identifies a directory, with errors that say what is wrong."""

import json

from argenseg_jax import user_input


def read_json(file, error: type[Exception] = ValueError) -> dict:
  """The JSON object in `file`; `error` naming the file if it is not one."""
  try:
    value = json.loads(user_input.path(file).read_text())
  except (UnicodeDecodeError, json.JSONDecodeError) as e:
    raise error(f'{file} is not valid JSON ({e}): the file is damaged.') from None
  if not isinstance(value, dict):
    raise error(f'{file} holds {type(value).__name__} JSON, expected an object.')
  return value


def read_dir_json(path, name: str, what: str, error: type[Exception] = FileNotFoundError) -> dict:
  """`path/name` parsed; FileNotFoundError if `path` is no directory, `error` (naming
  `what` the directory should be) if the file is missing, ValueError if it is not a JSON
  object."""
  path = user_input.path(path)
  if not path.is_dir():
    raise FileNotFoundError(f'{what} not found: {path}')
  file = path / name
  if not file.is_file():
    raise error(f'{path} has no {name}: not a {what}.')
  return read_json(file)
