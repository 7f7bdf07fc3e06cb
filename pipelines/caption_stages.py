"""CheckCaptionLanguage: every caption's language in its record, and the language and explicit-text rules.

Runs after ``CleanText`` (on the normalised caption). Each kept record gets ``language``: CLD2's code
(``filters.language``; ``und`` when there is nothing to go on), which the sample json carries. With
``languages`` a caption in another language is rejected as ``text_language`` (detail: the code and
whether CLD2 called it reliably); with ``explicit_text`` one holding a term of the shipped explicit
word list is rejected as ``text_nsfw`` (detail: the terms), as COYO-700M filtered; with ``require_noun``
one without a noun as ``text_no_noun`` (COYO-700M; ``filters.noun_rule``). Stage ``caption``.
"""

from __future__ import annotations

import apache_beam as beam

from filters.decision import Reject
from filters.language import identify_language
from filters.noun_rule import TEXT_NO_NOUN, NounCheck
from filters.nsfw_text import ExplicitTermMatcher, check_text_nsfw
from pipelines.records import Record
from pipelines.rule_stage import RuleStage, apply_rule_stage

STAGE = "caption"
TEXT_LANGUAGE = "text_language"


class _CheckCaptionLanguage(RuleStage):
    stage = STAGE

    def __init__(self, languages: tuple[str, ...], explicit_text: bool, nouns: NounCheck | None) -> None:
        self._languages = frozenset(languages)
        self._explicit_text = explicit_text
        self._matcher: ExplicitTermMatcher | None = None
        self._nouns = nouns

    def setup(self) -> None:
        if self._explicit_text:
            self._matcher = ExplicitTermMatcher().build()  # the word list's automaton, once per worker
        if self._nouns is not None:
            self._nouns.build()  # the POS tagger, once per worker

    def judge(self, record: Record) -> Record | Reject:
        guess = identify_language(record["caption"])
        if self._languages and guess.code not in self._languages:
            return Reject(TEXT_LANGUAGE, f"{guess.code} ({'reliable' if guess.reliable else 'best effort'})")
        if self._matcher is not None:
            finding = check_text_nsfw(record["caption"], self._matcher)
            if finding.reason is not None:
                return Reject(finding.reason, finding.detail)
        if self._nouns is not None and self._nouns(record["caption"]) is not None:
            return Reject(TEXT_NO_NOUN)
        return {**record, "language": guess.code}


class CheckCaptionLanguage(beam.PTransform):
    """Records → ``(kept, rejects)``; ``languages`` empty keeps every language."""

    stage = STAGE  # its name in the funnel (job.build reads it)

    def __init__(
        self,
        languages: tuple[str, ...] = (),
        explicit_text: bool = False,
        require_noun: bool = False,
        tagger: str = "auto",
    ) -> None:
        super().__init__()
        self._languages, self._explicit_text = tuple(languages), explicit_text
        self._nouns = NounCheck(tagger) if require_noun else None  # the tagger loads on the workers

    def expand(self, records: beam.PCollection) -> tuple[beam.PCollection, beam.PCollection]:
        rule = _CheckCaptionLanguage(self._languages, self._explicit_text, self._nouns)
        return apply_rule_stage(records, "LanguageAndExplicitText", rule)
