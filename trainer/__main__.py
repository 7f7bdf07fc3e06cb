"""``python -m trainer train …`` / ``python -m trainer evaluate …``: the two CLIs under one name."""

from __future__ import annotations

import sys

COMMANDS = ("train", "evaluate")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] not in COMMANDS:
        print(
            f"usage: python -m trainer {{{','.join(COMMANDS)}}} [options]  (--help after the command)",
            file=sys.stderr,
        )
        return 2
    if argv[0] == "train":
        from trainer.train import main as command
    else:
        from trainer.evaluate import main as command
    return command(argv[1:])


if __name__ == "__main__":
    sys.exit(main())
