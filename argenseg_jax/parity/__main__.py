import sys

from absl import flags

from argenseg_jax.parity import main

if __name__ == '__main__':
  flags.FLAGS.mark_as_parsed()
  sys.exit(main())
