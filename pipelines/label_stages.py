"""LabelSynsets (caption → WordNet noun synset ids) and BuildVocabulary (counts, CatLIP's V_tau, JSON).

Neither stage drops a record: an image whose caption has no noun is still a valid CLIP/ALIGN pair,
and a CatLIP trainer skips samples with no kept synset itself.
"""

from __future__ import annotations

from collections.abc import Iterator

import apache_beam as beam

from contract.files import VOCABULARY_FILE
from filters.synsets import LabelerConfig, SynsetLabeler
from filters.vocabulary import build_vocabulary
from pipelines.files import write_bytes
from pipelines.records import Record


class _Label(beam.DoFn):
    def __init__(self, config: LabelerConfig) -> None:
        self._config = config
        self._labeler: SynsetLabeler | None = None

    def setup(self) -> None:
        # WordNet and the tagger take seconds to load: once per DoFn instance, which Beam reuses across bundles.
        self._labeler = SynsetLabeler(self._config).load()

    def process(self, record: Record) -> Iterator[Record]:
        yield {**record, "synsets": self._labeler.labels(record["caption"])}


class LabelSynsets(beam.PTransform):
    """Adds ``synsets``: sorted unique ``n%08d`` ids of the caption's nouns (``filters.synsets``)."""

    def __init__(self, config: LabelerConfig) -> None:
        super().__init__()
        self._config = config

    def expand(self, records: beam.PCollection) -> beam.PCollection:
        return records | "Label" >> beam.ParDo(_Label(self._config))


def _write_vocabulary(counts: dict[str, int], output: str, v_tau: int) -> str:
    return write_bytes(output, VOCABULARY_FILE, build_vocabulary(counts, v_tau).to_json().encode("utf-8"))


class BuildVocabulary(beam.PTransform):
    """Labelled records → ``vocabulary.json`` in ``output``; returns a one-element PCollection of its name.

    Per-synset caption counts are a lifted combine; only the (synset → count) table, at most the
    82,115 WordNet noun synsets, is gathered on one worker.
    """

    def __init__(self, output: str, v_tau: int) -> None:
        super().__init__()
        self._output = output
        self._v_tau = v_tau

    def expand(self, records: beam.PCollection) -> beam.PCollection:
        return (
            records
            | "SynsetsOnce" >> beam.FlatMap(lambda r: sorted(set(r["synsets"])))
            | "CaptionsPerSynset" >> beam.combiners.Count.PerElement()
            | "Table" >> beam.combiners.ToDict()
            | "Write" >> beam.Map(_write_vocabulary, self._output, self._v_tau)
        )
