"""Fine-tune ARGenSeg-8B with the original recipe (spec §5.9).

AdamW lr 4e-5, cosine with 3 % warmup, weight decay 0.05, clip 1.0, global batch 128
(here 32 x 4 accumulation steps), bf16 compute on f32 master weights, remat, frozen ViT
and VQ-VAE, max length 8192, one epoch of your data (set num_steps = samples / 128).

  argenseg convert model --from ARGenSeg-8B --to ckpt/argenseg8b --vae vae_ch160v4096z32.pth
  argenseg train --config configs/train_argenseg8b.py --workdir gs://bucket/run1 \\
      --config.data.spec=refcoco:data/refcoco@unc:train --config.num_steps=1000
  argenseg plan --mesh data=1,fsdp=64,tensor=1 --device v5p --batch 128 --grad-accum 2

Run the same command on every host of a pod (`launch/run_tpu.sh`); rerunning resumes.
"""

from argenseg_jax.training.defaults import base_config


def get_config(arg=None):
  del arg
  config = base_config()
  config.update(init_from='ckpt/argenseg8b', batch_size=128, accum_steps=4, num_steps=1000,
                compute_dtype='bfloat16', remat=True, log_every=10)
  config.data.update(spec='refcoco:data/refcoco@unc:train', workers=8)
  config.mesh.update(data=1, fsdp=-1, tensor=1)
  config.checkpoint.update(every=200, keep=1)
  return config
