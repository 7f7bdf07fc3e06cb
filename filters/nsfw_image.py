"""The image NSFW rule (ALIGN removes pornographic images): a NudeNet detector on CPU, and the decision.

Two parts, so the decision is testable without explicit images:

* ``judge_detections`` (pure): the detector's (class, score) pairs → keep, or ``image_nsfw`` with
  the classes that crossed their thresholds (and their scores) in the detail. Thresholds live in
  ``NsfwRules``.
* ``NudeNetDetector``: NudeNet's ONNX model (YOLOv8 over 18 body-part classes, shipped inside the
  ``nudenet`` wheel; ``pip install -e '.[nsfw]'``) run with onnxruntime on the CPU. ``load()`` once
  per worker (``DoFn.setup()``); ``model_path`` plugs in another export with the same outputs
  (e.g. NudeNet's 640m model with ``input_size=640``). Preprocessing is NudeNet's: pad the RGB image
  with black to a square at the bottom/right, resize to the input size, scale to [0, 1]. Output:
  for each class, the best score among the boxes whose top class it is. NudeNet's own post-
  processing then runs class-agnostic non-maximum suppression, where a face box can suppress an
  overlapping exposed-breast box; skipping it makes this rule see every class NudeNet would, with
  the same score, and sometimes more (tested against the package on real photos).

Licence: nudenet 3.x and its 320n model are AGPL-3.0 (the wheel's LICENSE, the model's own
metadata: Ultralytics YOLOv8), although the package metadata still says MIT. Hence an optional
extra; see README ("NSFW filter").
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from filters.decision import KEPT, Finding

IMAGE_NSFW = "image_nsfw"

# The 320n model's classes in output order (also in its ONNX metadata, which ``load`` prefers).
NUDENET_CLASSES: tuple[str, ...] = (
    "FEMALE_GENITALIA_COVERED", "FACE_FEMALE", "BUTTOCKS_EXPOSED", "FEMALE_BREAST_EXPOSED",
    "FEMALE_GENITALIA_EXPOSED", "MALE_BREAST_EXPOSED", "ANUS_EXPOSED", "FEET_EXPOSED", "BELLY_COVERED",
    "FEET_COVERED", "ARMPITS_COVERED", "ARMPITS_EXPOSED", "FACE_MALE", "BELLY_EXPOSED",
    "MALE_GENITALIA_EXPOSED", "ANUS_COVERED", "FEMALE_BREAST_COVERED", "BUTTOCKS_COVERED",
)  # fmt: skip
# Exposed sexual body parts: what makes an image pornographic for this rule. Faces, feet, bellies,
# armpits, a bare male chest and anything covered are not (a beach photo is not porn).
EXPLICIT_CLASSES: tuple[str, ...] = (
    "FEMALE_GENITALIA_EXPOSED", "MALE_GENITALIA_EXPOSED", "ANUS_EXPOSED", "FEMALE_BREAST_EXPOSED",
    "BUTTOCKS_EXPOSED",
)  # fmt: skip
DEFAULT_MIN_SCORE = 0.5


@dataclass(frozen=True)
class NsfwRules:
    """When detections make an image ``image_nsfw``: any class in ``min_scores`` at or above its score.

    Default: the five explicit classes at 0.5 each, a middle operating point of a detector whose
    own output floor is 0.25 (NudeNet drops boxes below it). On the project's safe photos the highest
    score any explicit class reached is printed by ``benchmarks/bench_nsfw.py``; lower thresholds
    catch more and flag more safe photos.
    """

    min_scores: tuple[tuple[str, float], ...] = tuple((name, DEFAULT_MIN_SCORE) for name in EXPLICIT_CLASSES)

    def __post_init__(self) -> None:
        for name, score in self.min_scores:
            if not isinstance(name, str) or not 0.0 < score <= 1.0:
                raise ValueError(
                    f"NsfwRules: need (class name, score in (0, 1]) pairs, got {(name, score)!r}"
                )

    def threshold(self, name: str) -> float | None:
        return dict(self.min_scores).get(name)


DEFAULT_NSFW_RULES = NsfwRules()


def judge_detections(
    detections: Iterable[tuple[str, float]], rules: NsfwRules = DEFAULT_NSFW_RULES
) -> Finding:
    """``image_nsfw`` when any detection reaches its class threshold; detail "CLASS 0.87, ..." best first."""
    best: dict[str, float] = {}
    thresholds = dict(rules.min_scores)
    for name, score in detections:
        limit = thresholds.get(name)
        if limit is not None and score >= limit and score > best.get(name, -1.0):
            best[name] = float(score)
    if not best:
        return KEPT
    ranked = sorted(best.items(), key=lambda item: (-item[1], item[0]))
    return Finding(IMAGE_NSFW, ", ".join(f"{name} {score:.2f}" for name, score in ranked))


def default_model_path() -> Path:
    """The 320n ONNX model inside the installed ``nudenet`` wheel; a one-line error when it is missing."""
    try:
        import nudenet
    except ImportError as err:
        raise RuntimeError("the NSFW image rule needs the nsfw extra: pip install -e '.[nsfw]'") from err
    return Path(nudenet.__file__).resolve().parent / "320n.onnx"


class NudeNetDetector:
    """A NudeNet ONNX model on onnxruntime (CPU); picklable as its config, loaded once by ``load()``."""

    def __init__(
        self,
        model_path: str | Path | None = None,
        threads: int = 1,
        input_size: int | None = None,
        min_score: float = 0.25,
    ) -> None:
        if threads < 1 or (input_size is not None and input_size < 32) or not 0.0 <= min_score < 1.0:
            raise ValueError("NudeNetDetector: need threads >= 1, input_size >= 32 and 0 <= min_score < 1")
        self.model_path = None if model_path is None else str(model_path)
        self.threads = threads
        self.input_size = input_size
        self.min_score = min_score  # NudeNet's own floor (its NMS score threshold): below it, no detection
        self.classes: tuple[str, ...] = NUDENET_CLASSES
        self._session: Any = None
        self._input_name = ""

    def __getstate__(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("model_path", "threads", "input_size", "min_score")}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(**state)

    def load(self) -> NudeNetDetector:
        """Builds the onnxruntime session (about a second); idempotent."""
        if self._session is not None:
            return self
        try:
            import onnxruntime
        except ImportError as err:
            raise RuntimeError("the NSFW image rule needs the nsfw extra: pip install -e '.[nsfw]'") from err
        path = Path(self.model_path) if self.model_path else default_model_path()
        if not path.is_file():
            raise RuntimeError(f"NSFW model not found: {path} (pass model_path= an ONNX NudeNet export)")
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        meta = session.get_modelmeta().custom_metadata_map
        self.classes = _metadata_classes(meta) or NUDENET_CLASSES
        if self.input_size is None:
            self.input_size = _metadata_size(meta) or 320
        self._input_name = session.get_inputs()[0].name
        self._session = session
        return self

    def preprocess(self, image: Image.Image) -> np.ndarray:
        """NudeNet's input: black padding to a square at the bottom/right, resize, RGB in [0, 1], NCHW.

        The resize is OpenCV's bilinear (``cv2.dnn.blobFromImage``, as in NudeNet), not Pillow's
        antialiased one, so the scores equal the package's (tested). Channels are RGB, as YOLOv8
        exports expect. NudeNet 3.4.2's own ``detect(path)`` hands the model BGR: its
        ``cvtColor(RGBA2BGR)`` swaps a 3-channel image and ``blobFromImage(swapRB=True)`` swaps it back.
        """
        import cv2

        rgb = np.asarray(image if image.mode == "RGB" else image.convert("RGB"))
        height, width = rgb.shape[:2]
        side = max(height, width)
        square = np.zeros((side, side, 3), dtype=np.uint8)
        square[:height, :width] = rgb
        size = self.input_size or 320
        return cv2.dnn.blobFromImage(square, 1 / 255.0, (size, size), (0, 0, 0), swapRB=False, crop=False)

    def detect(self, image: Image.Image) -> list[tuple[str, float]]:
        """(class, best score) for every class that is some box's top class at >= ``min_score``, best first."""
        self.load()
        (output,) = self._session.run(None, {self._input_name: self.preprocess(image)})
        return self.scores_from_output(output)

    def scores_from_output(self, output: np.ndarray) -> list[tuple[str, float]]:
        """The per-class maxima from a YOLOv8 output (1, 4 + classes, boxes)."""
        scores = np.asarray(output)[0, 4:, :]
        top, best = scores.argmax(axis=0), scores.max(axis=0)
        keep = best >= self.min_score
        found: dict[str, float] = {}
        for class_id, score in zip(top[keep].tolist(), best[keep].tolist()):
            name = self.classes[class_id] if class_id < len(self.classes) else f"class_{class_id}"
            found[name] = max(found.get(name, 0.0), score)
        return sorted(found.items(), key=lambda item: (-item[1], item[0]))


def check_image_nsfw(
    image: Image.Image, detector: NudeNetDetector, rules: NsfwRules = DEFAULT_NSFW_RULES
) -> Finding:
    """The rule as the pipeline calls it on a decoded image: detect, then ``judge_detections``."""
    return judge_detections(detector.detect(image), rules)


def _metadata_classes(meta: dict[str, str]) -> tuple[str, ...] | None:
    try:
        names = ast.literal_eval(meta.get("names", ""))
    except (ValueError, SyntaxError):
        return None
    if isinstance(names, dict) and names and all(isinstance(k, int) for k in names):
        return tuple(str(names[i]) for i in sorted(names))
    return None


def _metadata_size(meta: dict[str, str]) -> int | None:
    try:
        size = ast.literal_eval(meta.get("imgsz", ""))
    except (ValueError, SyntaxError):
        return None
    if isinstance(size, list) and size and isinstance(size[0], int):
        return int(size[0])
    return None
