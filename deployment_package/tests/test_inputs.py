"""Every kind of upload a user may send: formats, EXIF orientation, faceless, broken and huge."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import textwrap
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from face_profile import PublicError, detection
from face_profile.detection import DETAIL_SCALE, MAX_TILES, tile_origins
from face_profile.image_io import MAX_ANALYSIS_SIDE, MAX_INPUT_PIXELS, MAX_SIDE, MAX_TIFF_TILE_BYTES, load_image
from PIL import Image, JpegImagePlugin
from profile_helpers import IMAGES, LIBRARIES, NON_FACES, measurement_names, open_rgb

ORIENTATION = 0x0112
# EXIF orientation -> how the camera stored the pixels of an upright scene.
STORED_AS = {
    3: Image.Transpose.ROTATE_180,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}
# Pillow's TIFF plugin applies the orientation itself when it loads the pixels; the others leave it.
TAGGED_FORMATS = {"jpg": {"quality": 95}, "tiff": {}, "png": {}, "webp": {"quality": 95}}


def assert_same_profile(fields: dict, reference: dict, color_tolerance: float = 3.0) -> None:
    assert fields["face_found"] is True
    assert fields["roll_degrees"] == pytest.approx(reference["roll_degrees"], abs=1.5)
    assert fields["yaw_degrees"] == pytest.approx(reference["yaw_degrees"], abs=2)
    assert fields["fwhr"] == pytest.approx(reference["fwhr"], rel=0.03)
    assert fields["pct_of_head_nose"] == pytest.approx(reference["pct_of_head_nose"], rel=0.1)
    for region in ("face", "left_cheek", "forehead"):
        key = f"rgb_of_{region}"
        assert fields[key] == pytest.approx(reference[key], abs=color_tolerance)


@pytest.mark.parametrize("extension", sorted(TAGGED_FORMATS))
@pytest.mark.parametrize("orientation", sorted(STORED_AS))
def test_exif_orientation_gives_the_upright_profile(model, tmp_path, orientation, extension):
    portrait = open_rgb("grace_hopper.jpg")
    upright_path, sideways_path = tmp_path / f"upright.{extension}", tmp_path / f"sideways.{extension}"
    portrait.save(upright_path, **TAGGED_FORMATS[extension])
    stored = portrait.transpose(STORED_AS[orientation])
    exif = Image.Exif()
    exif[ORIENTATION] = orientation
    stored.save(sideways_path, exif=exif, **TAGGED_FORMATS[extension])

    upright = model.predict(str(upright_path)).fields
    tagged = model.predict(str(sideways_path)).fields
    assert (tagged["image_width"], tagged["image_height"]) == portrait.size
    assert_same_profile(tagged, upright)
    assert tagged["face_box"] == pytest.approx(upright["face_box"], abs=3)
    # Control: the same pixels without the tag are not upright.
    untagged = model.predict(stored).fields
    assert not untagged["face_found"] or abs(untagged["roll_degrees"] - upright["roll_degrees"]) > 45


def test_phone_jpegs_with_a_second_picture_are_decoded_at_a_reduced_scale(model, profiles, tmp_path, monkeypatch):
    """Many phones write MPO (a JPEG with a second picture after it): libjpeg shrinks it as it
    decodes, as it does a plain JPEG, rather than decoding every pixel and shrinking them after."""
    portrait = open_rgb("grace_hopper.jpg")
    large = portrait.resize((portrait.width * 4, portrait.height * 4), Image.Resampling.BICUBIC)
    path = tmp_path / "phone.jpg"
    large.save(path, format="MPO", save_all=True, append_images=[portrait], quality=95)
    drafted = []
    draft = JpegImagePlugin.JpegImageFile.draft
    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "draft",
                        lambda image, *args: drafted.append(image.format) or draft(image, *args))
    loaded = load_image(str(path))
    assert drafted == ["MPO"] and loaded.original_size == large.size
    assert max(loaded.rgb.shape) == MAX_ANALYSIS_SIDE
    fields = model.predict(str(path)).fields
    assert fields["bizygomatic_width_px"] == pytest.approx(profiles["grace_hopper.jpg"]["bizygomatic_width_px"] * 4, rel=0.04)


def _save_rgba_png(portrait: Image.Image, path: Path) -> None:
    rgba = portrait.convert("RGBA")
    alpha = np.full(portrait.size[::-1], 255, dtype=np.uint8)
    alpha[:60] = 0  # transparent band above the head
    rgba.putalpha(Image.fromarray(alpha))
    rgba.save(path)


def _save_16bit_gray_png(portrait: Image.Image, path: Path) -> None:
    gray16 = np.asarray(portrait.convert("L"), dtype=np.uint16) * 257
    Image.fromarray(gray16).save(path)


def _save_16bit_rgb_png(portrait: Image.Image, path: Path) -> None:
    rgb16 = np.asarray(portrait, dtype=np.uint16) * 257
    cv2.imwrite(str(path), cv2.cvtColor(rgb16, cv2.COLOR_RGB2BGR))


def _save_float_tiff(portrait: Image.Image, path: Path) -> None:
    """32-bit float samples from 0 (black) to 1 (white), as scientific and HDR tools write them."""
    Image.fromarray(np.asarray(portrait.convert("L"), dtype=np.float32) / 255).save(path)


def _save_int32_tiff(portrait: Image.Image, path: Path) -> None:
    """32-bit integer samples holding 8-bit values."""
    Image.fromarray(np.asarray(portrait.convert("L"), dtype=np.int32)).save(path)


FORMATS = {
    "rgba.png": (_save_rgba_png, False),
    "lossless.webp": (lambda image, path: image.save(path, lossless=True), False),
    "lossy.webp": (lambda image, path: image.save(path, quality=90), False),
    "gray.jpg": (lambda image, path: image.convert("L").save(path, quality=95), True),
    "cmyk.jpg": (lambda image, path: image.convert("CMYK").save(path, quality=95), False),
    "gray16.png": (_save_16bit_gray_png, True),
    "rgb16.png": (_save_16bit_rgb_png, False),
    "palette.gif": (lambda image, path: image.quantize(256).save(path), False),
    "plain.bmp": (lambda image, path: image.save(path), False),
    "float.tiff": (_save_float_tiff, True),
    "int32.tiff": (_save_int32_tiff, True),
}


@pytest.mark.parametrize("filename", sorted(FORMATS))
def test_every_image_format_gives_the_same_profile(model, profiles, tmp_path, filename):
    save, is_gray = FORMATS[filename]
    portrait = open_rgb("grace_hopper.jpg")
    path = tmp_path / filename
    save(portrait, path)
    fields = model.predict(str(path)).fields
    reference = profiles["grace_hopper.jpg"]
    if is_gray:
        gray = model.predict(portrait.convert("L")).fields
        assert fields["rgb_of_face"][0] == fields["rgb_of_face"][1] == fields["rgb_of_face"][2]
        assert_same_profile(fields, gray, color_tolerance=1.5)  # 16-bit keeps the 8-bit levels
    else:
        assert_same_profile(fields, reference, color_tolerance=8 if "gif" in filename else 3)


def test_large_images_are_downscaled_and_reported_in_their_own_pixels(model, profiles, tmp_path):
    portrait = open_rgb("grace_hopper.jpg")
    scale = 4
    path = tmp_path / "large.png"
    portrait.resize((portrait.width * scale, portrait.height * scale), Image.Resampling.BICUBIC).save(path)
    fields = model.predict(str(path)).fields
    reference = profiles["grace_hopper.jpg"]
    assert (fields["image_width"], fields["image_height"]) == (portrait.width * scale, portrait.height * scale)
    assert max(fields["image_width"], fields["image_height"]) > MAX_ANALYSIS_SIDE
    assert fields["bizygomatic_width_px"] == pytest.approx(reference["bizygomatic_width_px"] * scale, rel=0.04)
    assert fields["head_area_px"] == pytest.approx(reference["head_area_px"] * scale**2, rel=0.06)
    assert fields["face_share_of_image"] == pytest.approx(reference["face_share_of_image"], rel=0.06)
    assert fields["fwhr"] == pytest.approx(reference["fwhr"], rel=0.03)
    assert model.predict(str(path)).annotated_image.size[0] <= MAX_ANALYSIS_SIDE


@pytest.mark.parametrize("name", NON_FACES)
def test_no_face_completes_with_nulls(model, name):
    profile = model.predict(str(IMAGES / name), num_attempts=3)
    fields = profile.fields
    assert fields["face_found"] is False and fields["num_faces"] == 0
    assert fields["detection_attempts"] == 3
    assert fields["model_id"].startswith("face-profile-")
    assert fields["image_width"] > 0 and fields["image_height"] > 0
    assert all(fields[name] is None for name in measurement_names(fields))
    assert profile.annotated_image is None


def _unreadable_files(tmp_path: Path) -> list[Path]:
    text = tmp_path / "notes.jpg"
    text.write_text("this is not an image")
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes((IMAGES / "grace_hopper.jpg").read_bytes()[:3000])
    # Formats Pillow reads but the model refuses before decoding: DDS (whose decoder raised
    # NotImplementedError for a damaged header, which was no PublicError), EPS (Ghostscript).
    dds = tmp_path / "portrait.dds"
    open_rgb("grace_hopper.jpg").save(dds)
    damaged_dds = tmp_path / "damaged.dds"
    header = bytearray(dds.read_bytes())
    struct.pack_into("<I", header, 80, 0)  # pixel format flags: none Pillow knows
    damaged_dds.write_bytes(header)
    eps = tmp_path / "portrait.eps"
    eps.write_text("%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n")
    return [text, truncated, tmp_path / "missing.jpg", dds, damaged_dds, eps]


def test_unreadable_files_are_public_errors(model, tmp_path):
    for path in _unreadable_files(tmp_path):
        with pytest.raises(PublicError) as error:
            model.predict(str(path))
        assert "not a readable image" in error.value.public_error_message, path.name


def test_an_empty_file_is_said_to_be_empty(model, tmp_path):
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    with pytest.raises(PublicError, match="The file is empty"):
        model.predict(str(empty))


def test_running_out_of_memory_while_decoding_is_not_called_an_unreadable_file(monkeypatch):
    """The user's image is fine: blaming it would hide that the instance needs more memory."""
    def exhausted(self: Image.Image) -> None:
        raise MemoryError
    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "load", exhausted)
    with pytest.raises(MemoryError):
        load_image(str(IMAGES / "grace_hopper.jpg"))


def _png_header_only(path: Path, width: int, height: int) -> None:
    """A tiny PNG claiming huge dimensions: a decompression bomb's calling card."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))


@pytest.mark.parametrize("side", [10_000, 40_000])
def test_decompression_bombs_are_refused(model, tmp_path, side):
    assert side * side > MAX_INPUT_PIXELS
    path = tmp_path / "bomb.png"
    _png_header_only(path, side, side)
    with pytest.raises(PublicError) as error:
        model.predict(str(path))
    assert "too many pixels" in error.value.public_error_message


def test_a_large_image_of_few_bytes_stays_within_an_instances_memory(tmp_path):
    """A 32-bit TIFF just under the pixel limit (~0.35 GB decoded, 4 bytes a pixel) is shrunk before
    it is converted: loaded at the analysis size and again at the finer search's, in a fresh
    interpreter, it stays well within UbiOps' default 2 GB (it went past it, at ~8 bytes a pixel)."""
    side = 9400
    assert side * side <= MAX_INPUT_PIXELS
    path = tmp_path / "large.tiff"
    exif = Image.Exif()
    exif[ORIENTATION] = 6
    Image.new("I", (side, side), 40_000).save(path, compression="tiff_adobe_deflate", exif=exif)
    script = textwrap.dedent(
        f"""
        import json, resource, sys
        sys.path.insert(0, {str(LIBRARIES)!r})
        from face_profile.image_io import load_image
        def peak(): return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
        before = peak()
        image = load_image({str(path)!r})
        analysed = peak() - before
        finer = image.finer(0.8)
        print(json.dumps([image.original_size, image.rgb.shape, analysed, peak() - before]))
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    original_size, shape, analysed_mb, finer_mb = json.loads(result.stdout)
    assert original_size == [side, side] and shape == [MAX_ANALYSIS_SIDE, MAX_ANALYSIS_SIDE, 3]
    assert analysed_mb < 1000 and finer_mb < 1500, f"peak MB above the interpreter's: {analysed_mb}, {finer_mb}"


@pytest.mark.parametrize("width", [12, 2100])  # 2100: shrunk by 2 before it is converted
@pytest.mark.parametrize(("mode", "levels", "expected"), [
    ("F", (0.0, 0.4, 1.0), (0, 102, 255)),  # floats of 0-1
    ("F", (-3.0, 100.0, 255.0), (0, 100, 255)),  # of 0-255, negatives black
    ("I", (0, 100, 255), (0, 100, 255)),  # 8-bit values in 32-bit integers
    ("I", (0, 25_700, 65_535), (0, 100, 255)),  # 16-bit ones, read as before
    ("I", (0, 400_000, 1_000_000), (0, 102, 255)),  # beyond 16 bits: by the largest value
])
def test_32_bit_and_float_tiffs_are_scaled_by_the_range_of_their_values(tmp_path, width, mode, levels, expected):
    """Pillow's conversion clipped floats at 255 (0-1 came out black) and "I" was taken for 16-bit."""
    dtype = np.float32 if mode == "F" else np.int32
    samples = np.repeat(np.array(levels, dtype=dtype), width // 3)[np.newaxis].repeat(8, axis=0)
    path = tmp_path / "samples.tiff"
    Image.fromarray(samples).save(path)
    assert Image.open(path).mode == mode
    rgb = load_image(str(path)).rgb
    thirds = rgb.shape[1] // 3
    assert [rgb[rgb.shape[0] // 2, thirds // 2 + i * thirds].tolist() for i in range(3)] == [[v] * 3 for v in expected]


def _deflate_zeros(length: int) -> bytes:
    """zlib's stream of `length` zero bytes, compressed a MB at a time (never all in memory)."""
    compressor, block, parts = zlib.compressobj(9), bytes(1 << 20), []
    for start in range(0, length, len(block)):
        parts.append(compressor.compress(block[: min(len(block), length - start)]))
    return b"".join(parts) + compressor.flush()


def _gray_tiff(path: Path, size: tuple[int, int], *, tile: int | None = None, rows_per_strip: int | None = None) -> None:
    """An 8-bit grey deflate TIFF of zeros (little-endian, its tags written by hand to declare any tile)
    in one tile of tile x tile pixels, or one strip declaring `rows_per_strip` rows."""
    width, height = size
    if tile is not None:
        data = _deflate_zeros(tile * tile)
        layout = [(322, 4, tile), (323, 4, tile), (324, 4, 0), (325, 4, len(data))]  # 324: offset, below
    else:
        data = _deflate_zeros(width * height)
        layout = [(273, 4, 0), (278, 4, rows_per_strip), (279, 4, len(data))]  # 273: offset, below
    entries = sorted([(256, 4, width), (257, 4, height), (258, 3, 8), (259, 3, 8), (262, 3, 1), (277, 3, 1), *layout])
    data_offset = 8 + 2 + 12 * len(entries) + 4
    ifd = struct.pack("<H", len(entries))
    for tag, kind, value in entries:
        value = data_offset if tag in (273, 324) else value
        ifd += struct.pack("<HHI", tag, kind, 1) + (struct.pack("<HH", value, 0) if kind == 3 else struct.pack("<I", value))
    path.write_bytes(b"II*\0" + struct.pack("<I", 8) + ifd + struct.pack("<I", 0) + data)


def test_a_tiff_declaring_a_tile_far_larger_than_its_image_is_refused(tmp_path):
    """libtiff allocates a whole tile before decoding it: a 2 MB TIFF of 100 x 100 pixels declaring
    one 46336 x 46336 tile took 2.1 GB and had the instance killed; here one of 8208 x 8208 (64.2 MiB)."""
    tile = 8208
    assert tile * tile > MAX_TIFF_TILE_BYTES
    bomb = tmp_path / "tile_bomb.tiff"
    _gray_tiff(bomb, (100, 100), tile=tile)
    assert bomb.stat().st_size < 100_000
    with pytest.raises(PublicError, match="declares tiles of 8,208 x 8,208 pixels") as error:
        load_image(str(bomb))
    assert "100 x 100" in error.value.public_error_message
    # Tiles of the usual size, a tile as large as the image needs, and one strip declaring more
    # rows than the image has (libtiff reads only the image's), are read as they were.
    for name, size, layout in (("usual.tiff", (100, 100), {"tile": 256}),
                               ("one_tile.tiff", (8200, 8200), {"tile": tile}),
                               ("strip.tiff", (100, 100), {"rows_per_strip": 1_000_000})):
        _gray_tiff(tmp_path / name, size, **layout)
        image = load_image(str(tmp_path / name))
        assert image.original_size == size and not image.rgb.any(), name


@pytest.mark.parametrize("size", [(MAX_SIDE + 1, 4), (3, 100_000)])
def test_a_side_longer_than_jpegs_limit_is_refused(model, tmp_path, size):
    """Within the pixel limit, an image 89,000,000 x 1 took 4.1 GB to decode again for the finer
    search, and one 20,000,000 x 4 was cut into ~100,000 tiles (117 s an attempt)."""
    path = tmp_path / "thin.png"
    Image.new("L", size, 128).save(path)
    with pytest.raises(PublicError, match=f"a side longer than {MAX_SIDE:,} pixels is not supported") as error:
        model.predict(str(path))
    assert f"{size[0]:,} x {size[1]:,} pixels" in error.value.public_error_message


def test_the_largest_uploads_admitted_fit_in_the_tiles_a_search_may_take():
    """The finer copy of any upload within MAX_INPUT_PIXELS and MAX_SIDE needs at most MAX_TILES tiles."""
    for width in (1, 260, 1365, 2601, 9459, 20_000, MAX_SIDE):
        height = min(MAX_INPUT_PIXELS // width, MAX_SIDE)
        for size in ((width, height), (height, width)):
            finer = [round(side * DETAIL_SCALE) for side in size]
            assert len(tile_origins(finer[0])) * len(tile_origins(finer[1])) <= MAX_TILES, size


def test_a_search_needing_more_tiles_than_it_may_take_is_refused(model, monkeypatch):
    monkeypatch.setattr(detection, "MAX_TILES", 12)  # a 1280 x 886 photo is searched in 6 x 4 tiles
    with pytest.raises(PublicError, match="too large to search for small faces: 24 tiles of 320 px, above the 12"):
        model.predict(Image.new("RGB", (1280, 886), (150, 140, 130)))


def test_the_scale_of_a_tall_image_is_its_height_s(tmp_path):
    """26 x 1290 is analysed at 21 x 1024: 0.79 of its size (finer search), not the 0.81 its width said."""
    path = tmp_path / "tall.png"
    Image.new("L", (26, 1290), 128).save(path)
    image = load_image(str(path))
    assert image.rgb.shape[:2] == (1024, 21)
    assert image.scale == pytest.approx(1024 / 1290, rel=1e-9) and image.scale < DETAIL_SCALE
