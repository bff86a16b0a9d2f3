"""RefCOCO-family files -> array_record with tfds (no TensorFlow needed), and back.

Build (reads the files through `refcoco_reader.RefCocoReader`, every split present):

    builder = ArgensegRefcoco(config='refcoco', data_dir=out_dir)
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=refer_root))

`refer_root` holds one folder per dataset (`refcoco/`, `refcoco+/`, `refcocog/`,
`grefcoco/`, each with its refs file and `instances.json`) and the COCO train2014
images in the first existing folder of `refcoco_reader.IMAGE_DIRS`.
Configs: `refcoco`, `refcoco_plus` (unc splits), `refcocog` (umd), `grefcoco` (unc).

Features of an example, one per ref, in the order of the refs file:
  image: the image file's bytes as on disk (JPEG, not re-encoded);
  masks: `[1, H, W, 1]` uint8 PNG (1-bit) masks, the union of the ref's objects;
  sentences: every referring sentence; origin: `'<refs file>:ref_id=<id>'`;
  image_file: the COCO file name.

Read: `TfdsRefSource(data_dir, 'refcoco', 'val')[i]` -> `RefSample` whose `image` is
the decoded uint8 `[H, W, 3]` array (no temporary files; grey or CMYK JPEGs converted
as `image_io.to_rgb`) and whose masks are bool `[H, W]`.
"""

import dataclasses
import io
import os

import numpy as np
import tensorflow_datasets as tfds
from PIL import Image

from argenseg_jax import user_input
from argenseg_jax.image_io import to_rgb
from argenseg_jax.ref_sample import RefSample
from data_pipelines.refcoco_reader import IMAGE_DIRS, RefCocoReader, load_refcoco

NAME = 'argenseg_refcoco'


@dataclasses.dataclass(eq=False)
class RefCocoConfig(tfds.core.BuilderConfig):
  """folder: the dataset folder under the manual dir; split_by: unc / umd / google."""
  folder: str = ''
  split_by: str | None = None


def _png(mask: np.ndarray) -> bytes:
  """bool `[H, W]` -> 1-bit PNG bytes."""
  buffer = io.BytesIO()
  Image.fromarray(mask).save(buffer, format='PNG')
  return buffer.getvalue()


class ArgensegRefcoco(tfds.core.GeneratorBasedBuilder):
  """Referring segmentation (RefCOCO family) as array_record, one example per ref."""

  VERSION = tfds.core.Version('1.0.0')
  RELEASE_NOTES = {'1.0.0': 'Initial release.'}
  BUILDER_CONFIGS = [
      RefCocoConfig(name='refcoco', folder='refcoco', split_by='unc'),
      RefCocoConfig(name='refcoco_plus', folder='refcoco+', split_by='unc'),
      RefCocoConfig(name='refcocog', folder='refcocog', split_by='umd'),
      RefCocoConfig(name='grefcoco', folder='grefcoco', split_by='unc'),
  ]
  MANUAL_DOWNLOAD_INSTRUCTIONS = (
      'Put the refer files in <manual_dir>/{refcoco,refcoco+,refcocog,grefcoco}/ '
      '(refs(unc).p / refs(umd).p / grefs(unc).json and instances.json) and the COCO '
      f'train2014 images in <manual_dir>/<one of {IMAGE_DIRS}>.')

  # tfds locates a checksums file beside the builder's module through the
  # `importlib_resources` backport, which is not installed; nothing is downloaded.
  code_path = None

  def __init__(self, *, file_format: str = 'array_record', **kwargs):
    super().__init__(file_format=file_format, **kwargs)

  def _info(self) -> tfds.core.DatasetInfo:
    return tfds.core.DatasetInfo(
        builder=self,
        description=__doc__.split('\n', 1)[0],
        features=tfds.features.FeaturesDict({
            'image': tfds.features.Tensor(shape=(), dtype=np.object_),
            'masks': tfds.features.Sequence(
                tfds.features.Image(shape=(None, None, 1), encoding_format='png')),
            'sentences': tfds.features.Sequence(tfds.features.Text()),
            'origin': tfds.features.Text(),
            'image_file': tfds.features.Text(),
        }),
        disable_shuffling=True,
    )

  def _split_generators(self, dl_manager):
    manual_dir = user_input.path(dl_manager.manual_dir)
    files = load_refcoco(manual_dir / self.builder_config.folder, self.builder_config.split_by)
    return {split: self._generate_examples(RefCocoReader(files, split)) for split in files.splits}

  def _generate_examples(self, reader: RefCocoReader):
    for i in range(len(reader)):
      sample = reader[i]
      yield sample.origin, {
          'image': user_input.path(sample.image).read_bytes(),
          'masks': [_png(m) for m in sample.masks],
          'sentences': sample.sentences,
          'origin': sample.origin,
          'image_file': user_input.path(sample.image).name,
      }


class TfdsRefSource:
  """A prepared `ArgensegRefcoco` split as a random-access source of `RefSample`s."""

  def __init__(self, data_dir, config: str, split: str):
    self.name = f'{NAME}/{config}'
    self.split = split
    try:
      self._source = tfds.data_source(self.name, split=split, data_dir=os.fspath(data_dir),
                                      download=False)
    except KeyError:  # tfds: "`splits` is empty"
      raise FileNotFoundError(
          f'{data_dir}: {self.name} is not prepared there; build it with '
          'ArgensegRefcoco(...).download_and_prepare(...).') from None

  def __len__(self) -> int:
    return len(self._source)

  def __getitem__(self, index: int) -> RefSample:
    example = self._source[index]
    origin = example['origin'].decode()
    try:
      with Image.open(io.BytesIO(example['image'])) as img:
        image = np.asarray(to_rgb(img))
    except (OSError, SyntaxError, ValueError) as e:
      raise ValueError(f'{origin}: the stored image cannot be decoded: {e}') from None
    masks = [np.asarray(m)[..., 0] > 0 for m in example['masks']]
    return RefSample(image, [s.decode() for s in example['sentences']], masks, origin)

  def __repr__(self) -> str:
    return f'TfdsRefSource({self.name!r}, split={self.split!r}, {len(self)} samples)'
