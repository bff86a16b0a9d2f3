#!/usr/bin/env bash
# Train on every worker of a Cloud TPU VM slice. Idempotent: rerunning the same command
# reuses the venv and resumes from the last checkpoint of RUN_ID.
#
#   gcloud compute tpus tpu-vm ssh NAME --zone ZONE --worker=all --command \
#     "git clone https://github.com/ORG/argenseg-jax 2>/dev/null; cd argenseg-jax && \
#      RUN_ID=refcoco-ft WORKDIR=gs://BUCKET/runs bash launch/run_tpu.sh \
#      --config.data.spec=refcoco:/data/refcoco@unc:train --config.num_steps=1000"
#
# Every worker gets the same RUN_ID and WORKDIR (a bucket or a shared filesystem), so
# they write one checkpoint together. Extra arguments go to `argenseg train`.
# Exit status 75 (EX_TEMPFAIL): preempted by SIGTERM after saving; requeue the job and
# it resumes. 2: bad input. Anything else: a failure to look at.
set -euo pipefail
RUN_ID=${RUN_ID:?set RUN_ID, the same on every worker}
WORKDIR=${WORKDIR:?set WORKDIR, e.g. gs://bucket/runs (shared by all workers)}
CONFIG=${CONFIG:-configs/train_argenseg8b.py}
VENV=${VENV:-$HOME/argenseg-venv}

if [ ! -x "$VENV/bin/argenseg" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip
  "$VENV/bin/pip" install -q -e ".[tpu]"
fi
exec "$VENV/bin/argenseg" train --config "$CONFIG" --workdir "$WORKDIR/$RUN_ID" \
  --config.distributed=true "$@"
