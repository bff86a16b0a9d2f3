"""argenseg-jax: ARGenSeg (image segmentation by autoregressive image generation) in JAX."""

from flax import nnx as _nnx

__version__ = '0.1.0'

# Parameters carry logical axis names as metadata only; they are placed on devices
# explicitly (abstract init -> shardings -> jit), never at construction time.
_nnx.use_eager_sharding(False)


def __getattr__(name):
  """`argenseg_jax.load_pretrained` without importing orbax at package import."""
  if name == 'load_pretrained':
    from argenseg_jax.pretrained import load_pretrained  # pylint: disable=import-outside-toplevel
    return load_pretrained
  raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
