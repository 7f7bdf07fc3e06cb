"""Image rules: one test per reason, odd modes, real photos, totality on corrupted bytes, benchmark smoke."""

from __future__ import annotations

import io
import os
import random
import subprocess
import sys
import tracemalloc
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from filters.image import (
    IMAGE_BAD_ASPECT,
    IMAGE_FILE_TOO_SMALL,
    IMAGE_MISSING,
    IMAGE_REASONS,
    IMAGE_TOO_MANY_PIXELS,
    IMAGE_TOO_SMALL,
    IMAGE_TRUNCATED,
    IMAGE_UNDECODABLE,
    ImageInfo,
    ImageRules,
    ProcessedImage,
    check_image_size,
    decode_and_resize,
    inspect_image,
    process_image,
)
from tests import image_fixtures as fx

REPO = Path(__file__).resolve().parents[1]


def _pixels(processed: ProcessedImage) -> np.ndarray:
    """The shard JPEG decoded back, so assertions check what is written, not the in-memory image."""
    return np.asarray(Image.open(io.BytesIO(processed.jpeg)).convert("RGB"), dtype=np.float64)


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(((a - b) ** 2).mean())
    return 10 * np.log10(255**2 / max(mse, 1e-9))


# --- one test per reason -------------------------------------------------------------------------


@pytest.mark.parametrize("data", [None, b"", bytearray()])
def test_missing_bytes(data: bytes | None) -> None:
    assert inspect_image(data) == IMAGE_MISSING
    assert decode_and_resize(data) == IMAGE_MISSING
    assert process_image(data) == IMAGE_MISSING


@pytest.mark.parametrize(
    "data", [fx.HTML_BYTES, b"\xff\xd8\xff" + bytes(64), bytes(range(256)) * 4, "not bytes", 42]
)
def test_not_an_image_is_undecodable(data: object) -> None:
    assert inspect_image(data) == IMAGE_UNDECODABLE  # type: ignore[arg-type]
    assert process_image(data) == IMAGE_UNDECODABLE  # type: ignore[arg-type]


def test_min_bytes_is_off_by_default_and_drops_small_files_when_set() -> None:
    small = fx.photo_jpeg((300, 300), quality=10)
    assert len(small) < 5120
    assert isinstance(process_image(small), ProcessedImage)
    assert process_image(small, ImageRules(min_bytes=5120)) == IMAGE_FILE_TOO_SMALL


def test_decompression_bomb_header_is_rejected_without_allocating() -> None:
    bomb = fx.png_header_only(100_000, 100_000)  # 10^10 pixels, 30 GB as RGB
    tracemalloc.start()
    try:
        assert inspect_image(bomb) == IMAGE_TOO_MANY_PIXELS
        assert process_image(bomb) == IMAGE_TOO_MANY_PIXELS
        assert decode_and_resize(bomb) == IMAGE_TOO_MANY_PIXELS
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 5_000_000


def test_bomb_between_pillow_warning_and_error_limits_is_rejected_even_with_warnings_as_errors() -> None:
    bomb = fx.png_header_only(10_000, 10_000)  # 10^8: above MAX_IMAGE_PIXELS, below twice that
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert inspect_image(bomb) == IMAGE_TOO_MANY_PIXELS
        assert process_image(bomb) == IMAGE_TOO_MANY_PIXELS


def test_max_pixels_is_configurable() -> None:
    data = fx.photo_jpeg((400, 300))
    assert isinstance(inspect_image(data), ImageInfo)
    assert inspect_image(data, ImageRules(max_pixels=400 * 300 - 1)) == IMAGE_TOO_MANY_PIXELS
    assert process_image(data, ImageRules(max_pixels=400 * 300)) != IMAGE_TOO_MANY_PIXELS


def test_one_pixel_gif_is_too_small() -> None:
    info = inspect_image(fx.tiny_gif())
    assert info == ImageInfo(format="GIF", width=1, height=1, mode="P")
    assert process_image(fx.tiny_gif()) == IMAGE_TOO_SMALL


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        ((200, 400), IMAGE_TOO_SMALL),  # exactly 200 px: ALIGN keeps only MORE than 200
        ((400, 200), IMAGE_TOO_SMALL),
        ((201, 400), None),
        ((199, 199), IMAGE_TOO_SMALL),
        ((603, 201), IMAGE_BAD_ASPECT),  # exactly 3.0:1: ALIGN keeps only BELOW 3
        ((201, 603), IMAGE_BAD_ASPECT),  # either orientation
        ((602, 201), None),
        ((2000, 300), IMAGE_BAD_ASPECT),
        ((201, 201), None),
    ],
)
def test_align_size_rules_on_boundaries(size: tuple[int, int], expected: str | None) -> None:
    assert check_image_size(*size, ImageRules()) == expected
    result = process_image(fx.photo_jpeg(size))
    if expected is None:
        assert isinstance(result, ProcessedImage)
        assert (result.original_width, result.original_height) == size
    else:
        assert result == expected


def test_size_rules_are_configurable() -> None:
    assert check_image_size(150, 150, ImageRules(min_side=100)) is None
    assert check_image_size(500, 201, ImageRules(max_aspect=2.0)) == IMAGE_BAD_ASPECT


def test_truncated_jpeg_opens_but_fails_decode() -> None:
    data = fx.truncated_jpeg()
    info = inspect_image(data)
    assert isinstance(info, ImageInfo) and (info.width, info.height) == (2560, 1600)
    assert decode_and_resize(data) == IMAGE_TRUNCATED
    assert process_image(data) == IMAGE_TRUNCATED


def test_truncated_png_is_truncated() -> None:
    data = fx.encode(fx.skimage_photo("astronaut"), "PNG")
    assert process_image(data[: len(data) // 2]) == IMAGE_TRUNCATED


def test_size_rejection_comes_before_the_decode() -> None:
    # A truncated small JPEG: if process_image decoded it we would see image_truncated.
    data = fx.photo_jpeg((150, 150))
    assert process_image(data[: len(data) // 2]) == IMAGE_TOO_SMALL


def test_reason_list_is_complete_and_stable() -> None:
    assert set(IMAGE_REASONS) == {
        "image_missing",
        "image_file_too_small",
        "image_undecodable",
        "image_too_many_pixels",
        "image_too_small",
        "image_bad_aspect",
        "image_truncated",
    }


def test_rules_reject_nonsense_settings() -> None:
    with pytest.raises(ValueError):
        ImageRules(max_aspect=0.5)
    with pytest.raises(ValueError):
        ImageRules(jpeg_quality=0)


# --- odd modes and orientation ---------------------------------------------------------------------


def test_exif_rotated_jpeg_reports_displayed_size_and_is_turned_upright() -> None:
    data = fx.exif_rotated_jpeg(6)
    info = inspect_image(data)
    assert isinstance(info, ImageInfo)
    assert (info.width, info.height, info.orientation) == (400, 600, 6)
    result = process_image(data)
    assert isinstance(result, ProcessedImage)
    assert (result.original_width, result.original_height) == (400, 600)
    assert (result.width, result.height) == (256, 384)
    upright = fx.skimage_photo("coffee").transpose(Image.Transpose.ROTATE_270).resize((256, 384))
    wrong_way = fx.skimage_photo("coffee").transpose(Image.Transpose.ROTATE_90).resize((256, 384))
    out = _pixels(result)
    assert _psnr(out, np.asarray(upright, dtype=np.float64)) > 25
    assert _psnr(out, np.asarray(wrong_way, dtype=np.float64)) < 15


def test_cmyk_jpeg_becomes_rgb_with_the_right_colours() -> None:
    result = process_image(fx.cmyk_jpeg())
    assert isinstance(result, ProcessedImage) and result.image.mode == "RGB"
    reference = np.asarray(
        fx.skimage_photo("chelsea").resize((result.width, result.height)), dtype=np.float64
    )
    assert _psnr(_pixels(result), reference) > 25


def test_palette_transparency_is_composited_over_white() -> None:
    result = process_image(fx.palette_png_with_transparency())
    assert isinstance(result, ProcessedImage)
    out = _pixels(result)
    left, right = out[:, : result.width // 2 - 10], out[:, result.width // 2 + 10 :]
    assert left.min() >= 245  # transparent → white, not the black stored under it
    assert np.allclose(right.mean(axis=(0, 1)), [0, 0, 255], atol=6)


def test_grey_alpha_is_composited_over_white() -> None:
    result = process_image(fx.la_png())
    assert isinstance(result, ProcessedImage)
    out = _pixels(result)
    assert out[:20, :20].min() >= 245
    assert out[140:160, 140:160].max() <= 10


def test_half_transparent_rgba_is_blended_with_white() -> None:
    result = process_image(fx.rgba_png())
    assert isinstance(result, ProcessedImage)
    assert np.allclose(_pixels(result).mean(axis=(0, 1)), [255, 128, 128], atol=3)


def test_multi_picture_jpeg_takes_the_draft_path_and_keeps_the_first_picture() -> None:
    result = process_image(fx.mpo_photo())
    assert isinstance(result, ProcessedImage) and result.source_format == "MPO"
    assert (result.original_width, result.original_height, result.width, result.height) == (
        2560,
        1600,
        410,
        256,
    )
    full = Image.open(io.BytesIO(fx.mate_photo_bytes("Aqua.jpg"))).convert("RGB")
    reference = np.asarray(full.resize((410, 256), Image.Resampling.LANCZOS), dtype=np.float64)
    assert _psnr(np.asarray(result.image, dtype=np.float64), reference) > 40


def test_sixteen_bit_mid_grey_stays_mid_grey() -> None:
    data = fx.grey16_png(32768)
    assert Image.open(io.BytesIO(data)).mode == "I;16"
    # Pillow's own conversion clips to white; this is the bug the scaling avoids.
    assert np.asarray(Image.open(io.BytesIO(data)).convert("RGB")).mean() > 250
    result = process_image(data)
    assert isinstance(result, ProcessedImage)
    assert abs(_pixels(result).mean() - 128) < 2
    dark = process_image(fx.grey16_png(1000))
    assert isinstance(dark, ProcessedImage) and _pixels(dark).mean() < 8


def test_one_bit_image_keeps_black_and_white() -> None:
    result = process_image(fx.one_bit_png())
    assert isinstance(result, ProcessedImage)
    out = _pixels(result)
    half = result.width // 2
    assert out[:, : half - 8].min() >= 245 and out[:, half + 8 :].max() <= 10


def test_small_images_are_not_upscaled() -> None:
    result = process_image(fx.photo_jpeg((240, 220)))
    assert isinstance(result, ProcessedImage) and (result.width, result.height) == (240, 220)


# --- real photos -------------------------------------------------------------------------------------


@pytest.mark.skipif(not fx.mate_photo_paths(), reason="Debian mate-backgrounds not installed")
def test_real_multi_megapixel_photos_shrink_with_draft_close_to_a_full_decode() -> None:
    rules = ImageRules(output_side=256)
    quality = []
    for path in fx.mate_photo_paths():
        data = path.read_bytes()
        result = process_image(data, rules)
        assert isinstance(result, ProcessedImage), path.name
        full = Image.open(io.BytesIO(data)).convert("RGB")
        assert (result.original_width, result.original_height) == full.size
        assert min(result.width, result.height) == 256
        assert abs(result.width / result.height - full.width / full.height) < 0.01
        reference = np.asarray(full.resize(result.image.size, Image.Resampling.LANCZOS), dtype=np.float64)
        quality.append(_psnr(np.asarray(result.image, dtype=np.float64), reference))
    # DCT-domain scaling is close to a full Lanczos resize; the finest texture (Dune) is the worst case.
    assert min(quality) > 30 and float(np.median(quality)) > 45, quality


@pytest.mark.parametrize("name", fx.SKIMAGE_PHOTOS)
def test_skimage_photos_in_png_and_jpeg(name: str) -> None:
    photo = fx.skimage_photo(name)
    for data in (fx.encode(photo, "PNG"), fx.encode(photo, "JPEG", quality=85)):
        result = process_image(data, ImageRules(output_side=200, min_side=100))
        assert isinstance(result, ProcessedImage)
        assert result.image.mode == "RGB"
        assert (result.original_width, result.original_height) == photo.size
        decoded = Image.open(io.BytesIO(result.jpeg))
        assert decoded.format == "JPEG" and decoded.size == (result.width, result.height)


def test_output_jpeg_quality_is_configurable() -> None:
    data = fx.encode(fx.skimage_photo("astronaut"), "PNG")
    high, low = (
        process_image(data, ImageRules(jpeg_quality=95)),
        process_image(data, ImageRules(jpeg_quality=30)),
    )
    assert isinstance(high, ProcessedImage) and isinstance(low, ProcessedImage)
    assert len(low.jpeg) < len(high.jpeg) / 2


# --- totality -------------------------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore:Truncated File Read")  # Pillow warns on a corrupted EXIF block
def test_corrupted_bytes_never_raise() -> None:
    rng = random.Random(7)
    seeds = [
        fx.photo_jpeg((260, 240)),
        fx.encode(fx.skimage_photo("chelsea").resize((260, 220)), "PNG"),
        fx.encode(fx.skimage_photo("coffee").resize((260, 220)), "GIF"),
        fx.encode(fx.skimage_photo("coffee").resize((260, 220)), "WEBP"),
        fx.exif_rotated_jpeg(8),
    ]
    outcomes: set[str] = set()
    for seed in seeds:
        for _ in range(60):
            data = bytearray(seed)
            for _ in range(rng.randint(1, 12)):
                data[rng.randrange(len(data))] = rng.randrange(256)
            if rng.random() < 0.3:
                data = data[: rng.randrange(1, len(data))]
            result = process_image(bytes(data))
            assert isinstance(result, ProcessedImage) or result in IMAGE_REASONS
            outcomes.add(result if isinstance(result, str) else "kept")
    assert {"kept", IMAGE_UNDECODABLE} <= outcomes


# --- benchmark smoke test -------------------------------------------------------------------------------


def test_benchmark_runs_in_quick_mode() -> None:
    completed = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "bench_image_rules.py"), "--quick"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
        env={**os.environ, "NO_ALBUMENTATIONS_UPDATE": "1"},
    )
    assert completed.returncode == 0, completed.stderr
    assert "images/s" in completed.stdout and "ratio" in completed.stdout
