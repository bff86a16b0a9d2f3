"""The checkpoints of a training run: one orbax `CheckpointManager`, three items.

  state  the `TrainState` (model, optimizer, step), restored straight into its shardings
  data   the grain iterator position (per process), so a resumed run sees the same batches
  meta   JSON: config, step, process count, format version

Saves are asynchronous and keep `max_to_keep` steps; a step becomes visible only once
fully written (orbax commits it by renaming a temporary directory), so a run killed
mid-save restarts from the previous step. Call `close()` on every exit path. The
directory may be a cloud one (`gs://...`): orbax writes it through `epath` and
tensorstore.
"""

import json

import grain
import jax
import orbax.checkpoint as ocp
from etils import epath

from argenseg_jax import user_input

FORMAT_VERSION = 1


class ResumeError(ValueError):
  """The checkpoint cannot continue this run (other process count or model)."""


class Checkpointer:
  def __init__(self, directory, *, max_to_keep: int = 2, async_save: bool = True):
    self.directory = user_input.path(directory, absolute=True)
    self.manager = ocp.CheckpointManager(
        self.directory, item_names=('state', 'data', 'meta'),
        options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True,
                                             enable_async_checkpointing=async_save))

  def latest_step(self) -> int | None:
    return self.manager.latest_step()

  def save(self, step: int, state, data_iterator, config: dict) -> None:
    meta = {'version': FORMAT_VERSION, 'step': step, 'process_count': jax.process_count(),
            'config': config}
    self.manager.save(step, force=True, args=ocp.args.Composite(
        state=ocp.args.StandardSave(state),
        data=grain.checkpoint.CheckpointSave(data_iterator),
        meta=ocp.args.JsonSave(meta)))

  def restore(self, abstract_state, data_iterator, config: dict):
    """The latest state (placed like `abstract_state`'s shardings), with
    `data_iterator` moved to where that step left it. Refuses a checkpoint written by
    another number of processes or for another model."""
    step = self.latest_step()
    where = self.directory / str(step)
    meta = self._read(where, ocp.args.Composite(meta=ocp.args.JsonRestore())).meta
    if meta['process_count'] != jax.process_count():
      raise ResumeError(
          f'{where} was written by {meta["process_count"]} processes, this run has '
          f'{jax.process_count()}: the data position is per process. Resume with '
          f'{meta["process_count"]} processes, or start a new workdir (init_from the '
          'exported model).')
    if meta['config'].get('model') != json.loads(json.dumps(config.get('model'))):
      raise ResumeError(f'{where} holds another model config than this run\'s; use a new '
                        'workdir for a different model.')
    restored = self._read(where, ocp.args.Composite(
        state=ocp.args.StandardRestore(abstract_state),
        data=grain.checkpoint.CheckpointRestore(data_iterator)))
    return restored.state

  def _read(self, where: epath.Path, args):
    """`manager.restore` of the step at `where`; a damaged step is a `ResumeError`."""
    try:
      return self.manager.restore(int(where.name), args=args)
    except Exception as e:  # orbax raises bare Exceptions for damaged files
      cause = str(e.__cause__ or e).splitlines()[0][:300]
      raise ResumeError(f'{where} cannot be read (truncated or damaged?): {cause}. Move it '
                        'away to resume from the step before it.') from e

  def wait(self) -> None:
    self.manager.wait_until_finished()

  def close(self) -> None:
    self.manager.wait_until_finished()
    self.manager.close()
