"""Your own referring-segmentation data: one JSON object per line of a `.jsonl` file.

    {"image": "images/0001.jpg",
     "mask": "masks/0001.png",
     "expressions": ["the red car", "car on the left"]}
    {"image": "images/0002.jpg",
     "mask": ["masks/0002_a.png", "masks/0002_b.png"],
     "expressions": ["all the dogs"]}
    {"image": "images/0003.jpg",
     "mask": ["masks/0003_cat.png", "masks/0003_dog.png"],
     "conversation": [
       {"from": "human", "value": "<image>\\nSegment the cat, then the dog."},
       {"from": "gpt", "value": "The cat: <mask>. The dog: <mask>."}]}

Keys (any other key is an error, so typos do not go unnoticed):
- `image` (required): the image file.
- `mask` (required): one mask file or a non-empty list of them, each the size of the
  image. Any non-zero pixel is foreground (grey 0/1 or 0/255, RGB, palette, 16-bit);
  JPEG masks use > 127 because of compression noise (see `mask_files`). An all-black
  mask means "no such object in the image".
- `expressions`: a non-empty list of non-empty strings, all describing the same target.
  Required without `conversation`; then a list of masks is merged into one (their union:
  a multi-target expression) and the prompt is ARGenSeg's referring template.
- `conversation` (optional): explicit turns `{"from": "human"|"gpt", "value": ...}` with
  exactly one `<image>` and, in the gpt turns, one `<mask>` per entry of `mask`, in order.
- `id` (optional): anything; ignored.
Paths are relative to the folder of the `.jsonl` file (absolute paths and cloud URLs such
as gs://... are kept; the file itself may be in the cloud too). Blank
lines are skipped; errors name `file:line`.
"""

from argenseg_jax import user_input
from data_pipelines.conversations import check_conversation
from data_pipelines.json_records import read_jsonl
from data_pipelines.lazy_samples import MaskFileRecord, RecordSource

KEYS = ('image', 'mask', 'expressions', 'conversation', 'id')


def _strings(value, what: str, origin: str) -> tuple[str, ...]:
  if (not isinstance(value, list) or not value
      or not all(isinstance(v, str) and v.strip() for v in value)):
    raise ValueError(f'{origin}: "{what}" must be a non-empty list of non-empty strings, '
                     f'got {value!r:.120}.')
  return tuple(value)


def _record(entry: dict, origin: str, root: str) -> MaskFileRecord:
  unknown = sorted(set(entry) - set(KEYS))
  if unknown:
    raise ValueError(f'{origin}: unknown keys {unknown}; the keys are {list(KEYS)}.')
  for key in ('image', 'mask'):
    if key not in entry:
      raise ValueError(f'{origin}: "{key}" is missing.')
  if not isinstance(entry['image'], str) or not entry['image']:
    raise ValueError(f'{origin}: "image" must be a file path.')
  masks = entry['mask']
  masks = _strings([masks] if isinstance(masks, str) else masks, 'mask', origin)
  conversation = entry.get('conversation')
  if conversation is None:
    sentences = _strings(entry.get('expressions'), 'expressions', origin)
  else:
    sentences = (_strings(entry['expressions'], 'expressions', origin)
                 if 'expressions' in entry else ())
    conversation = tuple(check_conversation(conversation, len(masks), origin))
  return MaskFileRecord(user_input.join(root, entry['image']), sentences, origin,
                        tuple(user_input.join(root, m) for m in masks), conversation,
                        merge=conversation is None)


class CustomReader(RecordSource):
  """`CustomReader(path)[i]` -> `RefSample` (format in the module docstring)."""

  def __init__(self, path):
    path = user_input.path(path)
    if not path.is_file():
      raise FileNotFoundError(f'annotation file not found: {path}')
    root = str(path.parent)
    records = [_record(entry, origin, root) for origin, entry in read_jsonl(path)]
    super().__init__(records, [], path)
