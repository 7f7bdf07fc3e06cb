"""The flags ``curate`` hands to Beam must be Beam's: a misspelt option is an error, not a warning.

Beam parses its options leniently: an unknown flag (``--per_query_cpa``) is logged as "Discarding
unparseable args" and the job runs with the default, and a bad value (``--direct_num_workers=abc``)
prints the usage of every Beam option. Here the leftover flags are parsed with exactly the options
Beam itself knows (every direct ``PipelineOptions`` subclass's argparse definitions, as
``PipelineOptions.get_all_options`` collects them, runner options included) on a parser whose errors
are one line.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable

from apache_beam.options.pipeline_options import PipelineOptions, _BeamArgumentParser


class _OneLineBeamParser(_BeamArgumentParser):
    def __init__(self, fail: Callable[[str], None]) -> None:
        super().__init__(allow_abbrev=False, add_help=False)
        self._fail = fail

    def error(self, message: str) -> None:  # argparse would print Beam's whole usage and exit
        self._fail(message)
        raise AssertionError("fail() must raise")


def beam_parser(fail: Callable[[str], None]) -> _BeamArgumentParser:
    """A parser of every option Beam knows; ``fail(message)`` must raise."""
    parser = _OneLineBeamParser(fail)
    classes: dict[str, type] = {}
    for cls in PipelineOptions.__subclasses__():
        classes.setdefault(str(cls), cls)
    for cls in classes.values():
        cls._add_argparse_args(parser)
    return parser


def check_beam_flags(beam_args: list[str], own_flags: list[str], fail: Callable[[str], None]) -> None:
    """Calls ``fail`` with one line when ``beam_args`` holds a flag no Beam option defines, or a bad value.

    ``own_flags`` (the curation job's option strings) are used to suggest what a misspelt flag meant.
    """
    parser = beam_parser(fail)
    _, unknown = parser.parse_known_args(beam_args)
    if not unknown:
        return
    first = unknown[0]
    flag = first.split("=", 1)[0]
    if not flag.startswith("-"):
        fail(f"unexpected argument {first[:100]!r}: every option is --name=value (see curate --help)")
    known = own_flags + [s for action in parser._actions for s in action.option_strings]
    close = difflib.get_close_matches(flag, known, n=1, cutoff=0.75)
    hint = f"; did you mean {close[0]}?" if close else "; see curate --help"
    fail(f"unknown option {flag[:100]} (neither a curate option nor a Beam pipeline option){hint}")
