"""Convolution and normalisation layers with logical axis names, NHWC."""

from flax import nnx

from argenseg_jax.layers import logical

_KERNEL_AXES = (None, None, 'conv_in', 'conv_out')


def conv2d(in_ch: int, out_ch: int, kernel: int, rngs: nnx.Rngs, *, stride: int = 1,
           padding=None) -> nnx.Conv:
  """A biased `kernel`x`kernel` conv, HWIO kernel; default padding `kernel // 2` (torch)."""
  if padding is None:
    padding = ((kernel // 2, kernel // 2),) * 2
  return nnx.Conv(
      in_ch, out_ch, (kernel, kernel), strides=stride, padding=padding,
      kernel_init=logical.partitioned(nnx.initializers.lecun_normal(), _KERNEL_AXES),
      bias_init=logical.partitioned(nnx.initializers.zeros_init(), ('conv_out',)),
      rngs=rngs)


def group_norm(channels: int, rngs: nnx.Rngs, *, groups: int = 32,
               eps: float = 1e-6) -> nnx.GroupNorm:
  """torch `GroupNorm(groups, channels, eps, affine=True)`; two-pass variance."""
  if channels % groups:
    raise ValueError(f'GroupNorm({groups}) needs channels divisible by {groups}, '
                     f'got {channels}.')
  return nnx.GroupNorm(
      channels, num_groups=groups, epsilon=eps, use_fast_variance=False,
      scale_init=logical.partitioned(nnx.initializers.ones_init(), ('conv_out',)),
      bias_init=logical.partitioned(nnx.initializers.zeros_init(), ('conv_out',)),
      rngs=rngs)


def conv2d_patch(in_ch: int, out_ch: int, patch: int, rngs: nnx.Rngs) -> nnx.Conv:
  """Non-overlapping `patch`x`patch` patch embedding: `[B,H,W,Cin] -> [B,H/p,W/p,Cout]`."""
  return nnx.Conv(
      in_ch, out_ch, (patch, patch), strides=patch, padding='VALID',
      kernel_init=logical.partitioned(nnx.initializers.lecun_normal(),
                                        (None, None, None, 'embed')),
      bias_init=logical.partitioned(nnx.initializers.zeros_init(), ('embed',)),
      rngs=rngs)
