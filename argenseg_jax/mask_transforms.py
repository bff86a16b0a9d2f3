"""A segmentation mask -> the VQ-VAE input, exactly as ARGenSeg's training data.

Mask as 8-bit RGB; 0/1 masks (max < 127) are scaled to 0/255; PIL bicubic resize to
512x512 (no aspect preservation), then to the tokenizer resolution; `x / 255 * 2 - 1`.
"""

import numpy as np
from PIL import Image

MASK_RESIZE = 512


def mask_to_vae_input(mask: Image.Image | np.ndarray, resolution: int = 256) -> np.ndarray:
  """`mask` (PIL image or `[H, W]`/`[H, W, 3]` array) -> float32 `[res, res, 3]` in [-1, 1]."""
  arr = np.asarray(mask)
  if arr.ndim == 2:
    arr = np.repeat(arr[..., None], 3, axis=-1)
  if arr.ndim != 3 or arr.shape[-1] != 3:
    raise ValueError(f'mask must be [H, W] or [H, W, 3], got shape {arr.shape}.')
  arr = arr.astype(np.uint8)
  if arr.max(initial=0) < 127:
    arr = arr * np.uint8(255)
  grey = (arr == arr[..., :1]).all()  # PIL resizes channels alone: one is enough
  img = Image.fromarray(arr[..., 0], 'L') if grey else Image.fromarray(arr, 'RGB')
  img = img.resize((MASK_RESIZE, MASK_RESIZE), Image.BICUBIC)
  if resolution != MASK_RESIZE:
    img = img.resize((resolution, resolution), Image.BICUBIC)
  out = np.asarray(img, np.float32) / 255.0 * 2.0 - 1.0
  return np.repeat(out[..., None], 3, axis=-1) if grey else out
