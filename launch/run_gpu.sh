#!/usr/bin/env bash
# Train on the GPUs of one host with jax[cuda12]. Idempotent: rerunning resumes.
#
#   RUN_ID=ft1 bash launch/run_gpu.sh --config.data.spec=custom:data/train.jsonl
#
# Several nodes: run this on every node with the same RUN_ID and a shared WORKDIR, plus
#   ARGENSEG_COORDINATOR=node0:1234 ARGENSEG_NUM_PROCESSES=<nodes> ARGENSEG_PROCESS_ID=<rank>
#   and --config.distributed=true   (SLURM / Open MPI are detected without the variables).
# Exit status 75 (EX_TEMPFAIL): preempted by SIGTERM after saving; requeue the job and
# it resumes. 2: bad input. Anything else: a failure to look at.
set -euo pipefail
RUN_ID=${RUN_ID:?set RUN_ID}
WORKDIR=${WORKDIR:-runs}
CONFIG=${CONFIG:-configs/train_argenseg8b.py}
VENV=${VENV:-.venv-gpu}

if [ ! -x "$VENV/bin/argenseg" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip
  "$VENV/bin/pip" install -q -e ".[cuda]"
fi
# JAX preallocates 75 % of GPU memory by default; the 8B plan needs ~90 %.
export XLA_PYTHON_CLIENT_MEM_FRACTION=${XLA_PYTHON_CLIENT_MEM_FRACTION:-0.92}
exec "$VENV/bin/argenseg" train --config "$CONFIG" --workdir "$WORKDIR/$RUN_ID" "$@"
