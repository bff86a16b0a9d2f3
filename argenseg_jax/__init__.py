"""argenseg-jax: ARGenSeg (image segmentation by autoregressive image generation) in JAX."""

__version__ = '0.1.0'


def __getattr__(name):
  """`argenseg_jax.load_pretrained` without importing orbax at package import."""
  if name == 'load_pretrained':
    from argenseg_jax.pretrained import load_pretrained  # pylint: disable=import-outside-toplevel
    return load_pretrained
  raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
