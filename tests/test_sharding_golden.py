"""Golden PartitionSpec table of ARGenSeg-8B on data=1, fsdp=4, tensor=2 (8 fake CPU
devices), from the abstract model: nothing is allocated."""

import json
import math
import pathlib

from argenseg_jax import sharding, sharding_dump
from argenseg_jax.checkpoints import layer_stacks, params

GOLDEN = pathlib.Path(__file__).parent / 'golden_sharding' / 'argenseg_8b_fsdp4_tensor2.json'
REGENERATE = ('python -m argenseg_jax.sharding_dump --config argenseg:variant=8b '
              f'--mesh data=1,fsdp=4,tensor=2 --out tests/golden_sharding/{GOLDEN.name}')


def _model():
  return sharding_dump.abstract_model(sharding_dump.load_config('argenseg:variant=8b'))


def test_8b_specs_match_golden():
  table = sharding_dump.spec_table(_model(), sharding.make_mesh(data=1, fsdp=4, tensor=2))
  golden = json.loads(GOLDEN.read_text())
  changed = [f'  {k}: {golden.get(k, "(new)")} -> {table.get(k, "(gone)")}'
             for k in sorted(set(table) | set(golden)) if table.get(k) != golden.get(k)]
  assert not changed, (
      f'{len(changed)} parameter specs differ from {GOLDEN.name} (golden -> now):\n'
      + '\n'.join(changed[:25]) + ('\n  ...' if len(changed) > 25 else '')
      + f'\nIf the change is intended, regenerate the table and commit it:\n  {REGENERATE}')


def test_8b_abstract_mesh_gives_the_same_table_and_large_arrays_use_fsdp():
  model = _model()
  table = sharding_dump.spec_table(model, sharding.abstract_mesh(data=1, fsdp=4, tensor=2))
  assert table == json.loads(GOLDEN.read_text())
  # every array over 1 MiB (f32) is sharded over fsdp; the only replicated one is tiny
  big = {k for k, v in params.flat_params(model).items()  # a stack: one layer's size
         if math.prod(v.shape[layer_stacks.is_stacked(k):]) * 4 > 2 ** 20}
  assert big and all('fsdp' in str(table[k]) for k in big)
  assert [k for k, spec in table.items() if spec == [None] * len(spec)] == [
      'image_tokenizer/decoder/conv_out/bias']
  # layer stacks: the `layers` axis replicated, each layer placed as on its own
  assert table['language_model/layers/attention/wq'] == [None, 'fsdp', 'tensor', None]
  assert table['language_model/layers/attention/wo'] == [None, 'tensor', None, 'fsdp']
  assert table['language_model/layers/feed_forward/w2'] == [None, 'tensor', 'fsdp']
  assert table['vision/vision_model/encoder/layers/mlp/fc1/kernel'] == [None, 'fsdp', 'tensor']
  # vocab 96653 padded to 96768 = 756 x 128: the embedding table and head split over tensor
  assert table['language_model/output'] == ['fsdp', 'tensor']
  assert table['language_model/tok_embeddings/embedding'] == ['tensor', 'fsdp']
