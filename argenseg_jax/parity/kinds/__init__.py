"""Per-kind runners: `run(fixture, wanted) -> {output name: array in reference layout}`.

`wanted(name)` says whether an output was asked for, so a runner can skip work.
"""

from argenseg_jax.parity.kinds import argenseg, intern_vision, internlm2, var_vqvae

RUNNERS = {
    'var_vqvae': var_vqvae.run,
    'intern_vit': intern_vision.run_intern_vit,
    'internlm2': internlm2.run,
    'internvl_chat': intern_vision.run_internvl_chat,
    'argenseg': argenseg.run,
}


def get_runner(kind: str):
  if kind not in RUNNERS:
    raise NotImplementedError(f'fixture kind {kind!r} is not implemented yet '
                              f'(implemented: {", ".join(sorted(RUNNERS))}).')
  return RUNNERS[kind]
