"""An `Answer` as the JSON reply of `POST /api/segment`; images are base64 PNGs.

  text          the answer, special tokens removed
  masks         how many masks the answer holds (0 or 1 with the default sampler)
  mask_png      the first mask, white on black, at the image size (null without a mask)
  width/height  the image size
  out_of_masks  the answer asked for more masks than the sampler had room for
  batch         {"size": the compiled batch size that ran it, "rows": requests in it}
  overlay_png   with overlay=1: the image with the mask tinted (null without a mask)
  scales_png    with previews=1: the first mask decoded after each scale, coarse to
                fine, at the VQ-VAE resolution ([] without a mask)
"""

import base64
import io

import numpy as np
from PIL import Image

from argenseg_jax import image_io
from argenseg_jax.serve.engine import Answer, Query


def png_base64(image: np.ndarray) -> str:
  """uint8 `[H, W]` or `[H, W, 3]` -> base64 of its PNG."""
  buffer = io.BytesIO()
  Image.fromarray(np.asarray(image, np.uint8)).save(buffer, format='PNG')
  return base64.b64encode(buffer.getvalue()).decode('ascii')


def to_json(query: Query, answer: Answer) -> dict:
  res = answer.result
  mask = res.masks[0] if res.masks else None
  body = {'text': res.text, 'masks': len(res.masks),
          'mask_png': None if mask is None else png_base64(mask.astype(np.uint8) * 255),
          'width': query.image.width, 'height': query.image.height,
          'out_of_masks': res.out_of_masks,
          'batch': {'size': answer.batch_size, 'rows': answer.rows}}
  if query.overlay:
    body['overlay_png'] = None if mask is None else png_base64(
        image_io.overlay(query.image, mask))
  if query.previews:
    body['scales_png'] = [] if answer.scales is None else [png_base64(s) for s in answer.scales]
  return body
