"""Multi-process start-up: `jax.distributed.initialize` only when a run is multi-host.

On TPU pods, SLURM and Open MPI, JAX finds the coordinator by itself. Elsewhere (several
GPU nodes, or two local CPU processes in tests) set:

  ARGENSEG_COORDINATOR=host0:1234  ARGENSEG_NUM_PROCESSES=2  ARGENSEG_PROCESS_ID=0|1

CPU processes exchange data through gloo collectives.
"""

import os

import jax

ENV = ('ARGENSEG_COORDINATOR', 'ARGENSEG_NUM_PROCESSES', 'ARGENSEG_PROCESS_ID')


def initialize() -> None:
  """Joins the other processes of this run (explicit env vars, or JAX's auto-detection)."""
  given = [name for name in ENV if name in os.environ]
  if given and len(given) != len(ENV):
    missing = sorted(set(ENV) - set(given))
    raise ValueError(f'multi-process env incomplete: {", ".join(given)} set but '
                     f'{", ".join(missing)} missing.')
  jax.config.update('jax_cpu_collectives_implementation', 'gloo')  # CPU clients only
  if given:
    jax.distributed.initialize(coordinator_address=os.environ['ARGENSEG_COORDINATOR'],
                               num_processes=int(os.environ['ARGENSEG_NUM_PROCESSES']),
                               process_id=int(os.environ['ARGENSEG_PROCESS_ID']))
  else:
    jax.distributed.initialize()
