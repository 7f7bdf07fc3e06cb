"""The NSFW image rule: the decision on synthetic detector outputs, the real model on real safe photos.

No explicit image is shipped or generated: the decision logic is tested on detector outputs, and
the model (NudeNet's ONNX file inside the ``nudenet`` wheel, the nsfw extra that setup_env installs)
only on safe photos, where every ``image_nsfw`` would be a false positive.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from PIL import Image

from filters.decision import KEPT, Finding
from filters.image import process_image
from filters.nsfw_image import (
    DEFAULT_NSFW_RULES,
    EXPLICIT_CLASSES,
    IMAGE_NSFW,
    NUDENET_CLASSES,
    NsfwRules,
    NudeNetDetector,
    check_image_nsfw,
    judge_detections,
)
from tests.bench_fixtures import load_benchmark
from tests.image_fixtures import SKIMAGE_PHOTOS, mate_photo_paths, skimage_photo

# ---------------------------------------------------------------- the decision (pure)


def test_explicit_class_at_or_above_threshold_is_nsfw():
    assert judge_detections([("FEMALE_BREAST_EXPOSED", 0.5)]) == Finding(
        IMAGE_NSFW, "FEMALE_BREAST_EXPOSED 0.50"
    )
    assert IMAGE_NSFW == "image_nsfw"
    assert judge_detections([("FEMALE_BREAST_EXPOSED", 0.49)]) == KEPT


def test_detail_lists_every_class_that_crossed_best_first():
    detections = [
        ("FACE_FEMALE", 0.95),
        ("BUTTOCKS_EXPOSED", 0.61),
        ("MALE_GENITALIA_EXPOSED", 0.88),
        ("BUTTOCKS_EXPOSED", 0.72),  # the best score of a class is reported
        ("ANUS_EXPOSED", 0.3),  # below its threshold: not in the detail
    ]
    assert judge_detections(detections) == Finding(
        IMAGE_NSFW, "MALE_GENITALIA_EXPOSED 0.88, BUTTOCKS_EXPOSED 0.72"
    )


@pytest.mark.parametrize(
    "detections",
    [
        [],
        [("FACE_FEMALE", 0.99), ("FACE_MALE", 0.97)],
        [
            ("MALE_BREAST_EXPOSED", 0.9),
            ("BELLY_EXPOSED", 0.9),
            ("FEET_EXPOSED", 0.9),
            ("ARMPITS_EXPOSED", 0.9),
        ],
        [("FEMALE_BREAST_COVERED", 0.99), ("BUTTOCKS_COVERED", 0.99), ("FEMALE_GENITALIA_COVERED", 0.99)],
        [("SOMETHING_ELSE", 1.0)],
    ],
)
def test_faces_covered_and_non_sexual_classes_keep(detections):
    assert judge_detections(detections) == KEPT


def test_rules_are_configurable_and_validated():
    strict = NsfwRules((("FEMALE_BREAST_EXPOSED", 0.3), ("BELLY_EXPOSED", 0.8)))
    assert judge_detections([("FEMALE_BREAST_EXPOSED", 0.35)], strict).reason == IMAGE_NSFW
    assert judge_detections([("BELLY_EXPOSED", 0.85)], strict).detail == "BELLY_EXPOSED 0.85"
    assert judge_detections([("BUTTOCKS_EXPOSED", 0.99)], strict) == KEPT  # not in these rules
    assert (
        DEFAULT_NSFW_RULES.threshold("ANUS_EXPOSED") == 0.5
        and DEFAULT_NSFW_RULES.threshold("FACE_MALE") is None
    )
    assert {name for name, _ in DEFAULT_NSFW_RULES.min_scores} == set(EXPLICIT_CLASSES)
    for bad in ((("BUTTOCKS_EXPOSED", 0.0),), (("BUTTOCKS_EXPOSED", 1.5),), ((3, 0.5),)):
        with pytest.raises(ValueError, match="NsfwRules"):
            NsfwRules(bad)


def _yolo_output(boxes: list[tuple[int, float]], classes: int = 18, anchors: int = 50) -> np.ndarray:
    """A (1, 4 + classes, anchors) YOLOv8 output whose anchor i has top class c at score s, others 0.01."""
    output = np.full((1, 4 + classes, anchors), 0.01, dtype=np.float32)
    for anchor, (class_id, score) in enumerate(boxes):
        output[0, 4 + class_id, anchor] = score
    return output


def test_scores_from_output_keep_each_class_best_box_above_the_floor():
    detector = NudeNetDetector()
    breast, face = NUDENET_CLASSES.index("FEMALE_BREAST_EXPOSED"), NUDENET_CLASSES.index("FACE_FEMALE")
    output = _yolo_output([(breast, 0.4), (breast, 0.7), (face, 0.9), (face, 0.2)])
    assert detector.scores_from_output(output) == [
        ("FACE_FEMALE", pytest.approx(0.9)),
        ("FEMALE_BREAST_EXPOSED", pytest.approx(0.7)),
    ]
    assert detector.scores_from_output(_yolo_output([(breast, 0.24)])) == []  # NudeNet's 0.25 floor
    # A box counts for its top class only: a 0.3 breast score under a 0.8 face score is not a breast box.
    mixed = _yolo_output([(face, 0.8)])
    mixed[0, 4 + breast, 0] = 0.3
    assert detector.scores_from_output(mixed) == [("FACE_FEMALE", pytest.approx(0.8))]


# ---------------------------------------------------------------- the real model, on safe photos


@pytest.fixture(scope="module")
def detector():
    return NudeNetDetector(threads=1).load()


def _safe_photos() -> list[tuple[str, Image.Image]]:
    photos = []
    for path in mate_photo_paths():
        processed = process_image(path.read_bytes())  # the shard-sized image the pipeline would judge
        photos.append((path.name, processed.image))
    photos += [(name, skimage_photo(name).convert("RGB")) for name in SKIMAGE_PHOTOS]
    return photos


def test_model_ships_in_the_wheel_with_nudenets_classes(detector):
    import nudenet.nudenet as package

    assert detector.classes == NUDENET_CLASSES == tuple(vars(package)["__labels"])
    assert detector.input_size == 320
    assert set(EXPLICIT_CLASSES) <= set(NUDENET_CLASSES)


def test_real_safe_photos_are_kept(detector):
    photos = _safe_photos()
    assert len(photos) >= 19  # 12 mate-backgrounds + 7 scikit-image photos
    flagged = {name: check_image_nsfw(image, detector) for name, image in photos}
    assert {name: f for name, f in flagged.items() if f.reason} == {}
    faces = dict(detector.detect(skimage_photo("astronaut")))
    assert faces.get("FACE_FEMALE", 0) > 0.5  # the model does run: it finds the astronaut's face


def test_scores_equal_nudenets_own_detector_on_real_photos(detector):
    from nudenet import NudeDetector

    reference = NudeDetector()
    for name, image in _safe_photos()[::2]:
        # NudeNet swaps a 3-channel array twice; an RGB array therefore reaches its model as RGB.
        theirs: dict[str, float] = {}
        for box in reference.detect(np.ascontiguousarray(np.asarray(image))):
            theirs[box["class"]] = max(theirs.get(box["class"], 0.0), box["score"])
        ours = dict(detector.detect(image))
        for cls, score in theirs.items():  # every class NudeNet reports, with the same best score
            assert ours[cls] == pytest.approx(score, abs=1e-4), name


def test_detector_accepts_any_mode_and_size(detector):
    grey = skimage_photo("camera")  # mode L
    assert grey.mode == "L"
    assert isinstance(detector.detect(grey), list)
    tall = Image.new("RGBA", (40, 300), (10, 200, 30, 128))
    assert detector.detect(tall) == [] and judge_detections(detector.detect(tall)) == KEPT


def test_detector_pickles_as_config_and_loads_once(detector, tmp_path):
    clone = pickle.loads(pickle.dumps(detector))
    assert clone._session is None and clone.threads == 1
    clone.load()
    session = clone._session
    assert clone.load()._session is session
    with pytest.raises(RuntimeError, match="NSFW model not found"):
        NudeNetDetector(model_path=tmp_path / "missing.onnx").load()
    with pytest.raises(ValueError, match="threads"):
        NudeNetDetector(threads=0)


def test_other_model_path_is_used(detector, tmp_path):
    from filters.nsfw_image import default_model_path

    copy = tmp_path / "my_export.onnx"
    copy.write_bytes(default_model_path().read_bytes())
    other = NudeNetDetector(model_path=copy).load()
    image = skimage_photo("astronaut")
    assert other.detect(image) == detector.detect(image)
    assert pickle.loads(pickle.dumps(other)).model_path == str(copy)


def test_benchmark_quick_smoke(capsys):
    bench = load_benchmark("bench_nsfw")
    assert bench.main(["--quick"]) == 0
    out = capsys.readouterr().out
    assert "false positives" in out and "images/s" in out and "baseline" in out
