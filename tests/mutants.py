"""Mutation check: does the default test run catch plausible bugs?

  python tests/mutants.py            # every mutant (make mutants; ~20 min on 2 cores)
  python tests/mutants.py NAME ...   # some of them
  python tests/mutants.py --list

Each mutant replaces one exact snippet of one file (it must occur exactly once, so a
change that moves the code makes the mutant fail loudly instead of testing nothing) in a
temporary copy of the tracked files, then runs the tests named for it there (`-m "not
slow"`, stopping at the first failure). CAUGHT: they fail; SURVIVED: they pass. Exits 1
if a mutant survived or no longer applies. The golden fixtures and key listings are read
from `ARGENSEG_GOLDEN_DIR` / `ARGENSEG_REFERENCE_DIR`, by default `../shared` beside
this checkout.
"""

import argparse
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time
from typing import NamedTuple

REPO = pathlib.Path(__file__).resolve().parent.parent


class Mutant(NamedTuple):
  name: str
  file: str
  old: str
  new: str
  tests: tuple[str, ...]  # pytest arguments


SAMPLER = 'argenseg_jax/sampler.py'
SEGMENTER = 'argenseg_jax/segmenter.py'
EVALUATOR = 'argenseg_jax/evaluation/evaluator.py'
METRICS = 'argenseg_jax/evaluation/metrics.py'
PIPELINE = 'data_pipelines/train_pipeline.py'
TEMPLATE = 'argenseg_jax/chat_template.py'
MODEL = 'argenseg_jax/models/argenseg.py'
T_SAMPLER = ('tests/test_sampler.py',)
T_ROWS = ('tests/test_small_segmenter.py', '-k', 'own_image')
T_EVAL = ('tests/test_evaluator.py',)
T_METRICS = ('tests/test_eval_metrics.py', 'tests/test_evaluator.py')
T_INPUTS = ('tests/test_train_inputs.py',)
T_SHARDS = ('tests/test_multiprocess.py', '-k', 'shards')
T_PARITY = ('tests/test_parity.py', '-k', 'argenseg')
T_MIXTURE = ('tests/test_mixture.py', '-k', 'not cli')
T_READERS = ('tests/test_data_readers.py',)
T_GROUNDING = ('tests/test_grounding.py',)
T_CONVERSION = ('tests/test_conversion_tables.py',)
VQVAE_TASK = 'argenseg_jax/training/mask_vqvae_task.py'
T_VQVAE = 'tests/test_vqvae_trainer.py'

MUTANTS = (
    # the sampler: every row's answer is its own
    Mutant('sampler_idle_rows_take_new_logits', SAMPLER,
           'last_logits=jnp.where(emit[:, None], logits, state.last_logits)',
           'last_logits=logits', T_SAMPLER),
    Mutant('sampler_waiting_rows_emit', SAMPLER, 'emit = ~done & (~waiting | draw)',
           'emit = ~done', T_SAMPLER),
    Mutant('sampler_row0_codes_for_all', SAMPLER,
           'codes = jnp.where(slot[..., None], new[:, None], state.codes)',
           'codes = jnp.where(slot[..., None], new[:1, None], state.codes)', T_SAMPLER),
    Mutant('sampler_waiting_rows_advance', SAMPLER, 'positions=state.positions + emit,',
           'positions=state.positions + ~done,', T_SAMPLER),
    Mutant('sampler_guidance_unpaired', SAMPLER,
           "wants = _pair((nxt == tokens.gen_start_token_id) & ~state.done, config)",
           "wants = (nxt == tokens.gen_start_token_id) & ~state.done", T_SAMPLER),
    Mutant('kv_cache_one_write_position', 'argenseg_jax/models/internlm2.py',
           'slots = start[:, None] + jnp.arange(q)[None]',
           'slots = start[:1, None] + jnp.arange(q)[None]', T_SAMPLER),
    # the segmenter: results go back to their rows
    Mutant('segmenter_row0_masks', SEGMENTER,
           'masks=[image_io.mask_from_generated(m, image.size) for m in decoded[row]]',
           'masks=[image_io.mask_from_generated(m, image.size) for m in decoded[0]]', T_ROWS),
    Mutant('segmenter_batched_decode', SEGMENTER,
           '    return [[self.decode_masks(codes[row, k][None])[0] for k in range(n)]\n'
           '            for row, n in enumerate(counts)]',
           '    images = self.decode_masks(codes.reshape(-1, codes.shape[-1]))\n'
           '    images = images.reshape(codes.shape[:2] + images.shape[1:])\n'
           '    return [list(images[row, :n]) for row, n in enumerate(counts)]', T_ROWS),
    # evaluation and metrics
    Mutant('eval_first_image_for_all', EVALUATOR, 'segmenter.segment([q.image for q in batch]',
           'segmenter.segment([batch[0].image for q in batch]', T_EVAL),
    Mutant('eval_first_sentence_only', EVALUATOR,
           'prompts = [(-1, chat_template.Referring(tuple(sample.sentences)))]',
           'prompts = [(-1, chat_template.Referring(tuple(sample.sentences[:1])))]', T_EVAL),
    Mutant('eval_predictions_reversed', EVALUATOR, 'zip(batch, predict(segmenter, batch))',
           'zip(batch, predict(segmenter, batch)[::-1])', T_EVAL),
    Mutant('eval_gt_last_mask', EVALUATOR, '    gt |= mask.astype(bool)',
           '    gt[...] = mask.astype(bool)', T_EVAL),
    Mutant('metrics_union_counts_overlap_twice', METRICS,
           'return inter, int(np.count_nonzero(pred)) + int(np.count_nonzero(gt)) - inter',
           'return inter, int(np.count_nonzero(pred)) + int(np.count_nonzero(gt))', T_METRICS),
    Mutant('metrics_ciou_as_mean_iou', METRICS,
           "out = {'cIoU': _ratio(self.inter, self.union),",
           "out = {'cIoU': _ratio(self.iou_sum, self.samples),", T_METRICS),
    # training inputs
    Mutant('labels_on_the_header', TEMPLATE,
           'turn_labels = [IGNORE] * header + turn_ids[header:-1] + [IGNORE]',
           'turn_labels = turn_ids[:-1] + [IGNORE]', T_INPUTS),
    Mutant('ge_end_label_kept', TEMPLATE, 'turn_labels = [mask_context if i == ge_end else l',
           'turn_labels = [l if i == ge_end else l', T_INPUTS),
    Mutant('padding_labelled', PIPELINE,
           'labels = np.full((b, length), chat_template.IGNORE, np.int32)',
           'labels = np.full((b, length), spec.pad_id, np.int32)', T_INPUTS),
    Mutant('token_mask_on_padding', PIPELINE, 'token_mask = np.zeros((b, length), bool)',
           'token_mask = np.ones((b, length), bool)', T_INPUTS),
    Mutant('bucket_of_the_first_example', PIPELINE,
           "length = bucket_length(max(len(e['ids']) for e in examples)",
           "length = bucket_length(len(examples[0]['ids'])", T_INPUTS),
    Mutant('mask_flags_all_on', PIPELINE,
           'flags = (np.arange(spec.max_masks) < len(sample.masks)).astype(np.int32)',
           'flags = np.ones(spec.max_masks, np.int32)', T_INPUTS),
    Mutant('masks_out_of_order', PIPELINE,
           "masks=np.concatenate([e['masks'] for e in examples])",
           "masks=np.concatenate([e['masks'] for e in examples[::-1]])", T_INPUTS),
    Mutant('every_process_reads_one_shard', PIPELINE,
           'return ds[cfg.process_index::cfg.process_count]', 'return ds[::cfg.process_count]',
           T_SHARDS),
    Mutant('shuffle_seed_per_process', PIPELINE, '.shuffle(seed=cfg.seed)',
           '.shuffle(seed=cfg.seed + cfg.process_index)', T_SHARDS),
    # the training step
    Mutant('loss_on_ignored_labels', MODEL,
           'is_text = (shift_labels != -100) & (shift_labels <= mask_context)',
           'is_text = shift_labels <= mask_context', T_PARITY),
    Mutant('visual_loss_off_by_one_slot', MODEL,
           'shift_labels = labels[:, 1:]\n',
           'shift_labels = jnp.roll(labels, -2, axis=1)[:, :-1]\n', T_PARITY),
    # checkpointing and resume
    Mutant('resume_without_the_data_position', 'argenseg_jax/training/checkpointing.py',
           'state=ocp.args.StandardRestore(abstract_state),\n'
           '        data=grain.checkpoint.CheckpointRestore(data_iterator)))',
           'state=ocp.args.StandardRestore(abstract_state)))',
           ('tests/test_training.py', '-k', 'sigkill')),
    # the mask VQ-VAE: refresh masks drawn by the step, held-out export metrics, its input
    Mutant('vqvae_refresh_masks_from_a_running_rng', VQVAE_TASK,
           'def hook(state, step):\n'
           '      if not r.every or step % r.every or step > r.until:\n'
           '        return state, {}\n'
           '      picked = np.random.default_rng([seed, step]).choice(',
           'rng = np.random.default_rng(seed)  # restarts on resume\n\n'
           '    def hook(state, step):\n'
           '      if not r.every or step % r.every or step > r.until:\n'
           '        return state, {}\n'
           '      picked = rng.choice(', (T_VQVAE, '-k', 'sigkill')),
    Mutant('vqvae_export_metrics_on_training_masks', VQVAE_TASK,
           'evaluate(VQVAETokenizer(model, self.model_cfg), self.held_out)',
           'evaluate(VQVAETokenizer(model, self.model_cfg), self.train)',
           (T_VQVAE, '-k', 'exports')),
    Mutant('vqvae_input_not_centred', VQVAE_TASK, '/ 255.0 * 2.0 - 1.0', '/ 255.0',
           (T_VQVAE, '-k', 'shipped')),
    # conversion tables (checked against the key listings and PyTorch layouts by hand)
    Mutant('conversion_w1_w3_swapped', 'argenseg_jax/models/internlm2_io.py',
           "Rule(f'{o}feed_forward/w1', f'{t}feed_forward.w1.weight', 'linear_oi_to_io'),\n"
           "              Rule(f'{o}feed_forward/w3', f'{t}feed_forward.w3.weight', "
           "'linear_oi_to_io'),",
           "Rule(f'{o}feed_forward/w1', f'{t}feed_forward.w3.weight', 'linear_oi_to_io'),\n"
           "              Rule(f'{o}feed_forward/w3', f'{t}feed_forward.w1.weight', "
           "'linear_oi_to_io'),",
           T_CONVERSION),
    Mutant('conversion_wqkv_k_v_swapped', 'argenseg_jax/checkpoints/conversion.py',
           "{'k': groups, 'v': groups + 1}", "{'k': groups + 1, 'v': groups}", T_CONVERSION),
    Mutant('conversion_wqkv_query_heads_j_major', 'argenseg_jax/checkpoints/conversion.py',
           'return w[:, :groups].reshape(kv_heads * groups, head_dim, -1)',
           'return w[:, :groups].transpose(1, 0, 2, 3).reshape(kv_heads * groups, head_dim, -1)',
           T_CONVERSION),
    Mutant('conversion_wo_not_transposed', 'argenseg_jax/checkpoints/conversion.py',
           'lambda a, heads, head_dim: a.T.reshape(heads, head_dim, -1)',
           'lambda a, heads, head_dim: a.reshape(heads, head_dim, -1)', T_CONVERSION),
    Mutant('conversion_wo_renamed', 'argenseg_jax/models/internlm2_io.py',
           "f'{t}attention.wo.weight'", "f'{t}attention.o_proj.weight'",
           T_CONVERSION + ('tests/test_streaming_conversion.py',)),
    Mutant('conversion_vit_proj_not_transposed', 'argenseg_jax/models/image_embedder_io.py',
           "rules += _linear(f'{o}attn/proj', f'{t}attn.proj')",
           "rules += [Rule(f'{o}attn/proj/kernel', f'{t}attn.proj.weight'),\n"
           "              Rule(f'{o}attn/proj/bias', f'{t}attn.proj.bias')]", T_CONVERSION),
    Mutant('conversion_mlp1_fc1_fc2_swapped', 'argenseg_jax/models/image_embedder_io.py',
           "_linear(f'{ours}mlp1/fc1', 'mlp1.1') + _linear(f'{ours}mlp1/fc2', 'mlp1.3')",
           "_linear(f'{ours}mlp1/fc1', 'mlp1.3') + _linear(f'{ours}mlp1/fc2', 'mlp1.1')",
           T_CONVERSION),
    Mutant('conversion_conv_kernel_h_w_swapped', 'argenseg_jax/checkpoints/conversion.py',
           "'conv_oihw_to_hwio': lambda a: a.transpose(2, 3, 1, 0)",
           "'conv_oihw_to_hwio': lambda a: a.transpose(3, 2, 1, 0)", T_CONVERSION),
    Mutant('conversion_vq_phi_reversed', 'argenseg_jax/models/var_vqvae_io.py',
           "f'quantize.quant_resi.qresi_ls.{k}'",
           "f'quantize.quant_resi.qresi_ls.{cfg.share_quant_resi - 1 - k}'", T_CONVERSION),
    # readers and mask codecs
    Mutant('rle_row_major', 'data_pipelines/coco_masks.py',
           'return flat.reshape(width, height).T', 'return flat.reshape(height, width)',
           T_READERS),
    Mutant('mask_threshold_inverted', 'argenseg_jax/image_io.py', "np.float32) / 255.0 > 0.5",
           "np.float32) / 255.0 < 0.5",
           ('tests/test_image_io.py', 'tests/test_small_segmenter.py')),
    # the image-dependence check: a model reads its own image
    Mutant('grounding_swapped_run_on_own_images', 'argenseg_jax/evaluation/grounding.py',
           "jnp.roll(batch['pixels'], -1, axis=0))", "batch['pixels'])", T_GROUNDING),
    Mutant('grounding_swap_from_the_previous_row', 'argenseg_jax/evaluation/grounding.py',
           "jnp.roll(batch['pixels'], -1, axis=0))", "jnp.roll(batch['pixels'], 1, axis=0))",
           T_GROUNDING),
    Mutant('embed_inputs_ignores_pixels', 'argenseg_jax/models/internvl_chat.py',
           'image_tokens = self.vision.features(pixels, drop_path_rng).embeds',
           'image_tokens = self.vision.features(jnp.zeros_like(pixels), drop_path_rng).embeds',
           T_GROUNDING),
    Mutant('embed_inputs_first_tile_for_all', 'argenseg_jax/models/internvl_chat.py',
           'image_tokens.reshape(t * n, d), valid)',
           'jnp.tile(image_tokens[:1], (t, 1, 1)).reshape(t * n, d), valid)', T_GROUNDING),
    # the small model's prompt, the per-template report, the overlay, the word check
    Mutant('query_first_puts_the_image_first', 'argenseg_jax/chat_template.py',
           "return ''.join(f'{s}.' for s in sentences) + f'\\n{IMAGE}'",
           "return f'{IMAGE}\\n' + ''.join(f'{s}.' for s in sentences)",
           ('tests/test_synthetic_vocab.py',)),
    Mutant('per_group_off_by_one', EVALUATOR, 'group = list(groups).index(sample.group) if',
           'group = 1 + list(groups).index(sample.group) if', T_EVAL),
    Mutant('overlay_without_outline', 'argenseg_jax/image_io.py', '  out[edge] = tint\n',
           '\n', ('tests/test_image_io.py',)),
    # structure: imports point one way; the decoder constrains what the planner sizes;
    # parameters are placed later whatever flax's default
    Mutant('library_imports_the_data_code', SEGMENTER,
           'from argenseg_jax import chat_template, image_io, user_input\n',
           'from argenseg_jax import chat_template, image_io, user_input\n'
           'from data_pipelines import data_spec\n',
           ('tests/test_import_direction.py',)),
    Mutant('mlp_hidden_left_unconstrained', 'argenseg_jax/models/internlm2.py',
           'return constrain(gated, HIDDEN_MLP) @ self.w2[...]', 'return gated @ self.w2[...]',
           ('tests/test_sharding.py',)),
    Mutant('parameters_sharded_at_creation', 'argenseg_jax/layers/logical.py',
           'nnx.with_partitioning(init, axes, eager_sharding=False)',
           'nnx.with_partitioning(init, axes)', ('tests/test_sharding.py',)),
    Mutant('grounding_expressions_from_the_previous_sample',
           'argenseg_jax/cli/evaluate.py', 'others = chosen[1:] + chosen[:1]',
           'others = chosen[-1:] + chosen[:-1]', T_GROUNDING),
    Mutant('stack_ignores_all_but_the_first_layer', 'argenseg_jax/layers/stack.py',
           '    carry, y = step(carry, jax.tree.map(lambda a, i=i: a[i], (state, xs)))',
           '    carry, y = step(carry, jax.tree.map(lambda a, i=i: a[0], (state, xs)))',
           ('tests/test_layer_stacks.py',)),
    Mutant('layers_stacked_out_of_order', 'argenseg_jax/checkpoints/layer_stacks.py',
           'np.stack([np.asarray(by_index[i]) for i in range(len(by_index))])',
           'np.stack([np.asarray(v) for v in by_index.values()][::-1])',
           ('tests/test_layer_stacks.py', 'tests/test_conversion_tables.py')),
    Mutant('vocabulary_padding_left_in_the_softmax', 'argenseg_jax/models/internlm2.py',
           '    return mask_padding(logits.astype(jnp.float32), self.vocab_size)',
           '    return logits.astype(jnp.float32)', ('tests/test_attention.py',)),
    Mutant('loss_chunks_misaligned', 'argenseg_jax/layers/losses.py',
           '  return jnp.swapaxes(nll, 0, 1).reshape(b, -1)[:, :length]',
           '  return jnp.swapaxes(nll, 0, 1).reshape(b, -1)[:, pad:pad + length]',
           ('tests/test_attention.py',)),
    Mutant('splash_padding_in_the_real_segment', 'argenseg_jax/layers/attention.py',
           '          token_mask.astype(jnp.int32))',
           '          jnp.ones_like(token_mask, jnp.int32))',
           ('tests/test_attention.py',)),
    Mutant('splash_without_the_padding', 'argenseg_jax/models/internlm2.py',
           'token_mask=key_mask)', 'token_mask=jnp.ones_like(key_mask))',
           ('tests/test_attention.py',)),
    Mutant('fsdp_fallback_on_the_layer_axis', 'argenseg_jax/sharding.py',
           'if e is None and d % n == 0 and not (stacked and i == 0)]',
           'if e is None and d % n == 0]', ('tests/test_sharding.py',)),
    Mutant('repeat_time_ignored', 'data_pipelines/mixture.py',
           'count = n * s.repeat_time if s.repeat_time >= 1 else int(n * s.repeat_time)',
           'count = n', T_MIXTURE),
    Mutant('weights_ignored', 'data_pipelines/mixture.py',
           '  if sources[0].weight is None:\n    return natural',
           '  if True:\n    return natural', T_MIXTURE),
    Mutant('panoptic_class_not_drawn', 'data_pipelines/panoptic.py',
           'int(draw_generator(self.origin, draw, CLASS_DRAW).choice(categories))',
           'int(categories[0])', T_MIXTURE),
    Mutant('panoptic_id_from_red_only', 'data_pipelines/panoptic.py',
           'rgb[..., 0] + 256 * rgb[..., 1] + 256 * 256 * rgb[..., 2]', 'rgb[..., 0]',
           T_MIXTURE),
    Mutant('text_only_rows_keep_their_tile', 'data_pipelines/train_pipeline.py',
           'image_flag=np.int32(sample.image is not None)', 'image_flag=np.int32(1)', T_MIXTURE),
    Mutant('augment_draw_ignored', 'data_pipelines/mixture.py',
           'draw_generator(sample.origin, draw, JPEG_DRAW)', 'np.random.default_rng(0)',
           T_MIXTURE),
    Mutant('draw_without_the_epoch', 'data_pipelines/mixture.py',
           'draw = (self.seed, epoch, j)', 'draw = (self.seed, 0, j)', T_MIXTURE),
    Mutant('pipeline_without_the_epoch', PIPELINE,
           'return self.source.epoch_sample(k, g // len(self.source))',
           'return self.source.epoch_sample(k, 0)', T_MIXTURE),
    Mutant('serve_answers_reversed', 'argenseg_jax/serve/batcher.py',
           'item.answer.set_result(answers[k])', 'item.answer.set_result(answers[-1 - k])',
           ('tests/test_serve.py', '-k', 'batches_group')),
    Mutant('serve_answer_to_a_request_gone', 'argenseg_jax/serve/batcher.py',
           '        if item.answer.done():  # timed out while its batch ran: the answer is '
           'dropped\n          continue\n', '', ('tests/test_serve.py', '-k', 'survives')),
    Mutant('serve_queue_one_too_many', 'argenseg_jax/serve/batcher.py',
           'if len(self._waiting) >= self.capacity:', 'if len(self._waiting) > self.capacity:',
           ('tests/test_serve.py', '-k', 'full_queue_refuses')),
    Mutant('serve_batch_mixes_prompt_widths', 'argenseg_jax/serve/batcher.py',
           'batch = [i for i in self._waiting if i.key == head.key][:self.max_batch]',
           'batch = list(self._waiting)[:self.max_batch]',
           ('tests/test_serve.py', '-k', 'batches_group')),
    Mutant('serve_previews_of_row_0', 'argenseg_jax/serve/engine.py',
           'seg.decode_masks(res.codes[0][None], all_scales=True)',
           'seg.decode_masks(results[0].codes[0][None], all_scales=True)',
           ('tests/test_serve.py', '-k', 'concurrent')),
    Mutant('masks_joined_to_the_image_root', 'data_pipelines/mixture.py',
           'mask_root=s.base_dir', 'mask_root=s.root', T_MIXTURE),
)


def _copy_tree(dest: pathlib.Path) -> None:
  """The tracked and untracked-but-not-ignored files of the checkout, into `dest`."""
  files = subprocess.run(['git', 'ls-files', '-z', '--cached', '--others', '--exclude-standard'],
                         cwd=REPO, capture_output=True, check=True).stdout.split(b'\0')
  for name in filter(None, files):
    src = REPO / name.decode()
    if src.is_file():
      (dest / name.decode()).parent.mkdir(parents=True, exist_ok=True)
      shutil.copy2(src, dest / name.decode())


def _run(mutant: Mutant, tree: pathlib.Path, env: dict) -> str:
  path = tree / mutant.file
  source = (REPO / mutant.file).read_text()
  if source.count(mutant.old) != 1:
    return f'NOT APPLIED ({mutant.file} holds the snippet {source.count(mutant.old)} times)'
  path.write_text(source.replace(mutant.old, mutant.new))
  try:
    result = subprocess.run(
        [sys.executable, '-m', 'pytest', '-q', '-x', '-p', 'no:cacheprovider', '-m', 'not slow',
         *mutant.tests], cwd=tree, env=env, capture_output=True, text=True)
  finally:
    path.write_text(source)
  lines = result.stdout.strip().splitlines()
  last = lines[-1] if lines else result.stderr.strip()[-200:]
  verdict = {0: 'SURVIVED', 1: 'CAUGHT'}.get(result.returncode, f'ERROR ({result.returncode})')
  return f'{verdict}  [{last}]'


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('names', nargs='*', help='mutants to run (default: all)')
  parser.add_argument('--list', action='store_true', help='list the mutants and their tests')
  args = parser.parse_args(argv)
  known = {m.name: m for m in MUTANTS}
  unknown = [n for n in args.names if n not in known]
  if unknown:
    parser.error(f'unknown mutants {unknown}; see --list')
  chosen = [known[n] for n in args.names] or list(MUTANTS)
  if args.list:
    for m in chosen:
      print(f'{m.name:38} {m.file:42} {" ".join(m.tests)}')
    return 0
  shared = REPO.parent / 'shared'
  env = dict(os.environ, PYTHONPATH='')
  env.setdefault('ARGENSEG_GOLDEN_DIR', str(shared / 'golden'))
  env.setdefault('ARGENSEG_REFERENCE_DIR', str(shared / 'reference'))
  failed = 0
  with tempfile.TemporaryDirectory(prefix='argenseg-mutants-') as tmp:
    tree = pathlib.Path(tmp)
    _copy_tree(tree)
    env['PYTHONPATH'] = str(tree)
    for m in chosen:
      start = time.perf_counter()
      verdict = _run(m, tree, env)
      failed += not verdict.startswith('CAUGHT')
      print(f'{m.name:38} {verdict} {time.perf_counter() - start:.0f}s', flush=True)
  print(f'{len(chosen) - failed} of {len(chosen)} mutants caught')
  return 1 if failed else 0


if __name__ == '__main__':
  sys.exit(main())
