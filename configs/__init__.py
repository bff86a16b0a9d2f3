"""Configs as code: each module's `get_config(arg)` returns an `ml_collections.ConfigDict`
(`argenseg_jax.config_args.load_config`). Installed as `argenseg_jax.configs`."""
