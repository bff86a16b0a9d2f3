"""argenseg-jax: ARGenSeg (image segmentation by autoregressive image generation) in JAX."""

from flax import nnx as _nnx

__version__ = '0.1.0'

# Parameters carry logical axis names as metadata only; they are placed on devices
# explicitly (abstract init -> shardings -> jit), never at construction time.
_nnx.use_eager_sharding(False)
