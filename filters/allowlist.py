"""Query allowlists: load MetaCLIP-style lists and build a CLIP-WIT-style one.

An entry's id is its position in the list, so the order is part of the format. The builder
is deterministic and puts entries in this order (which is also the priority when ``max_size``
cuts the list), following MetaCLIP's part order:

1. WordNet lemma names, all parts of speech, underscores as spaces, sorted: they come first so
   their ids do not depend on the corpus;
2. corpus unigrams occurring at least ``min_unigram_count`` times, by count desc then text;
3. corpus bigrams occurring at least ``min_bigram_count`` times with PMI above ``min_pmi``
   (nltk's ``BigramAssocMeasures.pmi``, log2), by PMI desc then bigram, at most ``max_bigrams``;
4. titles, in the order given (the caller ranks them, e.g. by search volume).

Duplicates are removed case-insensitively (after collapsing whitespace), the first occurrence
wins, so a title "Paris" is dropped when the unigram "paris" is already in the list.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path

from filters.text import normalize_text, words


def load_allowlist(path: str | Path) -> list[str]:
    """Entries from MetaCLIP's format (a JSON list of strings) or a text file with one per line.

    A file whose first non-blank character is ``[`` is read as JSON; otherwise each non-blank
    line (surrounding whitespace removed) is one entry. Raises ``ValueError`` saying what is wrong.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"allowlist not found: {path} (pass a JSON list of strings or one entry per line)"
        )
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as err:
        raise ValueError(f"{path}: allowlist is not UTF-8 text ({err.reason} at byte {err.start})") from None
    if text.lstrip().startswith("["):
        entries = _parse_json_list(text, path)
    elif text.lstrip().startswith("{"):
        raise ValueError(
            f"{path}: allowlist is a JSON object; expected a JSON list of strings (MetaCLIP format)"
        )
    else:
        entries = [line.strip() for line in text.splitlines() if line.strip()]
    if not entries:
        raise ValueError(f"{path}: allowlist is empty")
    return entries


def _parse_json_list(text: str, path: Path) -> list[str]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: invalid JSON at line {err.lineno} column {err.colno}: {err.msg}") from None
    if not isinstance(data, list):
        raise ValueError(f"{path}: expected a JSON list of strings, got {type(data).__name__}")
    for index, entry in enumerate(data):
        if not isinstance(entry, str):
            raise ValueError(f"{path}: entry {index} is {type(entry).__name__} {entry!r}, expected a string")
    return data


def save_allowlist(entries: Iterable[str], path: str | Path) -> None:
    """Writes ``entries`` as a JSON list (MetaCLIP's format), UTF-8, one entry per line."""
    body = ",\n".join(json.dumps(entry, ensure_ascii=False) for entry in entries)
    Path(path).write_text(f"[\n{body}\n]\n" if body else "[]\n", encoding="utf-8")


def wordnet_lemma_names() -> list[str]:
    """Every WordNet lemma name (all parts of speech), underscores as spaces, sorted."""
    try:
        from nltk.corpus import wordnet

        names = wordnet.all_lemma_names()
        return sorted({name.replace("_", " ") for name in names})
    except LookupError:
        raise RuntimeError("WordNet is not installed for nltk: run `install-wordnet install`") from None


def _corpus_unigrams_and_bigrams(
    texts: Iterable[object], min_unigram_count: int, min_bigram_count: int, min_pmi: float, max_bigrams: int
) -> tuple[list[str], list[str]]:
    from nltk.collocations import BigramAssocMeasures, BigramCollocationFinder

    # One document per text, so no bigram spans two texts.
    finder = BigramCollocationFinder.from_documents(words(normalize_text(text)) for text in texts)
    unigrams = sorted(
        (word for word, count in finder.word_fd.items() if count >= min_unigram_count),
        key=lambda word: (-finder.word_fd[word], word),
    )
    finder.apply_freq_filter(min_bigram_count)
    bigrams = [f"{a} {b}" for (a, b), pmi in finder.score_ngrams(BigramAssocMeasures.pmi) if pmi > min_pmi][
        :max_bigrams
    ]
    return unigrams, bigrams


def _dedup(sources: Iterable[Iterable[str]], max_size: int) -> Iterator[str]:
    seen: set[str] = set()
    for source in sources:
        for raw in source:
            entry = " ".join(str(raw).split())
            key = entry.casefold()
            if entry and key not in seen:
                seen.add(key)
                yield entry
                if len(seen) >= max_size:
                    return


def build_wit_allowlist(
    texts: Iterable[object],
    *,
    wordnet: bool = True,
    min_unigram_count: int = 100,
    max_bigrams: int = 100_000,
    min_bigram_count: int = 30,
    min_pmi: float = 0.0,
    titles: Iterable[str] | None = None,
    max_size: int = 500_000,
) -> list[str]:
    """A CLIP-WIT-style query list from a text corpus (see the module docstring for the order).

    Defaults: CLIP's 100-occurrence unigram threshold and 500k size; about 100k bigrams as in
    MetaCLIP's list; bigrams seen fewer than 30 times are left out because PMI overrates rare pairs.
    """
    if max_size < 1 or min_unigram_count < 1 or min_bigram_count < 1 or max_bigrams < 0:
        raise ValueError("max_size, min_unigram_count and min_bigram_count must be >= 1, max_bigrams >= 0")
    unigrams, bigrams = _corpus_unigrams_and_bigrams(
        texts, min_unigram_count, min_bigram_count, min_pmi, max_bigrams
    )
    sources = [wordnet_lemma_names() if wordnet else [], unigrams, bigrams, titles or []]
    return list(_dedup(sources, max_size))
