"""``python -m demo [--out out/demo] [--size N] [--workers 2] [--seed 0]``."""

import sys

from demo.run import run

if __name__ == "__main__":
    sys.exit(run())
