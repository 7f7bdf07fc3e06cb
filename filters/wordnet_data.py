"""Puts WordNet 3.0 where nltk finds it, without a network when Debian has it.

Order of preference: nltk data that is already installed; Debian's ``wordnet-base``
+ ``wordnet-sense-index`` copied (not symlinked: nltk's zip-aware loader rejects
links) into ``<venv>/nltk_data/corpora/wordnet`` with a generated ``lexnames``
(Debian lacks it); ``nltk.download`` where a network allows.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

DEBIAN_WORDNET = Path("/usr/share/wordnet")
# WordNet's lexicographer files, from the lexnames(5WN) man page: number, name, syntactic category.
LEXNAMES = [
    "adj.all 3", "adj.pert 3", "adv.all 4", "noun.Tops 1", "noun.act 1", "noun.animal 1",
    "noun.artifact 1", "noun.attribute 1", "noun.body 1", "noun.cognition 1", "noun.communication 1",
    "noun.event 1", "noun.feeling 1", "noun.food 1", "noun.group 1", "noun.location 1", "noun.motive 1",
    "noun.object 1", "noun.person 1", "noun.phenomenon 1", "noun.plant 1", "noun.possession 1",
    "noun.process 1", "noun.quantity 1", "noun.relation 1", "noun.shape 1", "noun.state 1",
    "noun.substance 1", "noun.time 1", "verb.body 2", "verb.change 2", "verb.cognition 2",
    "verb.communication 2", "verb.competition 2", "verb.consumption 2", "verb.contact 2",
    "verb.creation 2", "verb.emotion 2", "verb.motion 2", "verb.perception 2", "verb.possession 2",
    "verb.social 2", "verb.stative 2", "verb.weather 2", "adj.ppl 3",
]  # fmt: skip
# cntlist.rev holds the SemCor sense counts (Lemma.count(), used by filters/synsets.py's "visual" sense).
REQUIRED = ["data.noun", "index.noun", "noun.exc", "index.sense", "data.verb", "index.verb", "verb.exc",
            "data.adj", "index.adj", "adj.exc", "data.adv", "index.adv", "adv.exc", "cntlist.rev"]  # fmt: skip


def default_target() -> Path:
    """``<sys.prefix>/nltk_data``: on nltk's default search path for this interpreter."""
    return Path(sys.prefix) / "nltk_data"


def wordnet_available() -> bool:
    try:
        from nltk.corpus import wordnet

        wordnet.ensure_loaded()
        return wordnet.synsets("dog", pos="n")[0].name() == "dog.n.01"
    except (LookupError, OSError):  # OSError: a partial install (e.g. no lexnames), which a reinstall repairs
        return False


def install_from_debian(target: Path, source: Path = DEBIAN_WORDNET) -> Path:
    """Copies Debian's WordNet files into ``target/corpora/wordnet`` and writes ``lexnames``."""
    missing = [name for name in REQUIRED if not (source / name).is_file()]
    if missing:
        raise FileNotFoundError(
            f"{source} lacks {', '.join(missing)}: install Debian's wordnet-base and wordnet-sense-index"
        )
    dest = target / "corpora" / "wordnet"
    dest.mkdir(parents=True, exist_ok=True)
    for path in source.iterdir():
        if path.is_file():
            # Unlink first: copying onto a symlink left by an older install would write through it.
            (dest / path.name).unlink(missing_ok=True)
            shutil.copyfile(path, dest / path.name)
    (dest / "lexnames").write_text(
        "".join(f"{i:02d}\t{name}\t{cat}\n" for i, (name, cat) in enumerate(x.split() for x in LEXNAMES))
    )
    return dest


def ensure_wordnet(target: Path | None = None, quiet: bool = False) -> str:
    """Makes ``nltk.corpus.wordnet`` loadable; returns where it came from."""
    if wordnet_available():
        return "already installed"
    target = target or default_target()
    import nltk

    if str(target) not in nltk.data.path:
        nltk.data.path.insert(0, str(target))
    if DEBIAN_WORDNET.is_dir():
        install_from_debian(target)
        source = f"Debian's wordnet-base copied to {target}"
    else:
        if not nltk.download("wordnet", download_dir=str(target), quiet=quiet):
            raise RuntimeError("WordNet is not installed: apt-get install wordnet-base wordnet-sense-index")
        source = f"nltk.download into {target}"
    _reset_wordnet_reader()
    if not wordnet_available():
        raise RuntimeError(f"WordNet was copied to {target} but nltk cannot load it")
    return source


def _reset_wordnet_reader() -> None:
    # nltk's LazyCorpusLoader remembers a failed lookup; a fresh one sees the new files.
    import nltk.corpus
    from nltk.corpus import reader, util

    nltk.corpus.wordnet = util.LazyCorpusLoader("wordnet", reader.WordNetCorpusReader, util.LazyCorpusLoader(
        "omw-1.4", reader.CorpusReader, r".*/wn-data-.*\.tab", encoding="utf8"))  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Install WordNet 3.0 for nltk (offline from Debian's packages)."
    )
    parser.add_argument("command", choices=["install", "check"])
    parser.add_argument("--target", type=Path, default=None, help="nltk data dir (default: <venv>/nltk_data)")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    if args.command == "check":
        ok = wordnet_available()
        print("wordnet: ok" if ok else "wordnet: missing (run: install-wordnet install)")
        return 0 if ok else 1
    try:
        source = ensure_wordnet(args.target, quiet=args.quiet)
    except (OSError, RuntimeError) as err:
        print(f"install-wordnet: {err}", file=sys.stderr)
        return 1
    if not args.quiet or source != "already installed":
        print(f"[setup] WordNet: {source}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
