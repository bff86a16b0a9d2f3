"""`python -m argenseg_jax.cli ...`: the `argenseg` command."""

import sys

from argenseg_jax.cli import main

sys.exit(main())
