"""The NSFW image rule inside CheckAndHashImages, on the real Beam runner (no explicit image is shipped)."""

from __future__ import annotations

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions

from filters.image import ImageRules
from filters.nsfw_image import IMAGE_NSFW, NudeNetDetector
from pipelines.image_stages import CheckAndHashImages
from tests.image_fixtures import mate_photo_paths

OUT: dict[str, list] = {}


class AlwaysExposed:
    """A stand-in detector that finds an exposed breast in every picture (tests the routing, not the model)."""

    loaded = False

    def load(self) -> AlwaysExposed:
        self.loaded = True
        return self

    def detect(self, image) -> list[tuple[str, float]]:
        assert self.loaded, "the stage must load the detector in setup()"
        return [("FEMALE_BREAST_EXPOSED", 0.91), ("FACE_FEMALE", 0.8)]


def _store(items: list, label: str) -> None:
    OUT[label] = items


def _run(detector) -> dict[str, list]:
    OUT.clear()
    records = [{"key": path.stem, "url": str(path), "caption": "a photo", "image_bytes": path.read_bytes()}
               for path in mate_photo_paths()[:4]]  # fmt: skip
    with beam.Pipeline(options=PipelineOptions(["--runner=FnApiRunner"])) as pipeline:
        kept, rejects = (
            pipeline | beam.Create(records) | CheckAndHashImages(ImageRules(), nsfw_detector=detector)
        )
        for label, pcoll in (("kept", kept), ("rejects", rejects)):
            _ = pcoll | f"List{label}" >> beam.combiners.ToList() | f"Store{label}" >> beam.Map(_store, label)
    return dict(OUT)


def test_a_detection_rejects_with_the_classes_and_no_thumbnail() -> None:
    out = _run(AlwaysExposed())
    assert out["kept"] == [] and len(out["rejects"]) == 4
    for reject in out["rejects"]:
        assert (reject["stage"], reject["reason"]) == ("image", IMAGE_NSFW)
        assert "FEMALE_BREAST_EXPOSED" in reject["detail"] and not reject.get("thumbnail")


def test_the_real_detector_keeps_safe_real_photos() -> None:
    out = _run(NudeNetDetector())
    assert len(out["kept"]) == 4 and out["rejects"] == []
