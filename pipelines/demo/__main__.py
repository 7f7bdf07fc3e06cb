"""``python -m pipelines.demo [--out out/demo] [--size N] [--workers 2] [--seed 0]``."""

import sys

from pipelines.demo.run import run

if __name__ == "__main__":
    sys.exit(run())
