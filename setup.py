"""argenseg-jax: ARGenSeg in JAX/Flax."""

import setuptools

CORE = [
    'jax==0.10.2', 'jaxlib==0.10.2', 'flax==0.12.8', 'optax==0.2.8',
    'orbax-checkpoint==0.12.8', 'etils[epath]==1.15.0', 'grain==0.2.18', 'ml-collections==1.1.0',
    'tensorflow-datasets==4.9.10', 'array-record==0.8.6', 'numpy==2.4.6',
    'pillow==13.0.0', 'safetensors==0.8.0', 'sentencepiece==0.2.1',
    'tensorboardX==2.6.5', 'protobuf==7.36.2', 'packaging==26.4', 'tqdm==4.70.1',
]
CONVERT = ['torch==2.13.0']  # reading .pth files and PyTorch references only
SERVE = ['starlette==1.10.0', 'uvicorn==0.55.0', 'python-multipart==0.0.34']  # argenseg serve

setuptools.setup(
    name='argenseg-jax',
    version='0.1.0',
    description='ARGenSeg: segmentation by autoregressive image generation, in JAX/Flax',
    python_requires='>=3.10',
    packages=setuptools.find_packages(include=['argenseg_jax', 'argenseg_jax.*',
                                               'data_pipelines', 'data_pipelines.*'])
    + ['argenseg_jax.configs'],
    package_dir={'argenseg_jax.configs': 'configs'},  # `argenseg train --config NAME`
    package_data={'argenseg_jax': ['assets/*.png', 'assets/*.model', 'assets/mask_vqvae/*',
                                   'assets/argenseg_small/**/*', 'assets/mixture_tiny/**/*'],
                  'data_pipelines': ['*.json']},
    install_requires=CORE,
    extras_require={
        'convert': CONVERT,
        'serve': SERVE,
        'test': CONVERT + SERVE + ['pytest==9.2.0', 'pytest-xdist==3.8.0', 'ruff==0.17.6'],
        'cuda': ['jax[cuda12]==0.10.2'],
        'tpu': ['jax[tpu]==0.10.2'],
    },
    entry_points={'console_scripts': ['argenseg=argenseg_jax.cli:main']},
)
