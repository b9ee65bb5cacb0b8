"""Images users will really send to the default package, good and bad: each gets a clear answer,
and the emulator keeps serving."""

from __future__ import annotations

import io
import struct
import zlib

import httpx
import pytest
from PIL import Image
from profile_helpers import IMAGES

PORTRAIT = IMAGES / "grace_hopper.jpg"


@pytest.fixture
def face_profile(ubiops_emulator):
    return ubiops_emulator


def png_declaring(width: int, height: int) -> bytes:
    """A valid PNG header announcing a huge image, with almost no pixel data: a decompression bomb's shape."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")


def encoded(image: Image.Image, format: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=format, **options)
    return buffer.getvalue()


def portrait() -> Image.Image:
    return Image.open(PORTRAIT).convert("RGB")


def animated_gif() -> bytes:
    frames = [portrait(), portrait().transpose(Image.Transpose.FLIP_LEFT_RIGHT)]
    return encoded(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)


def sixteen_bit_tiff() -> bytes:
    gray = portrait().convert("L")
    return encoded(gray.point(lambda v: v * 256, mode="I").convert("I;16"), "TIFF")


def corrupt_exif_jpeg() -> bytes:
    data = PORTRAIT.read_bytes()
    garbage_app1 = b"\xff\xe1" + struct.pack(">H", 40) + b"Exif\x00\x00" + b"\xff\x00garbage-not-tiff" * 2
    return data[:2] + garbage_app1[:42] + data[2:]


UNREADABLE = "not a readable image"


@pytest.mark.parametrize("name, make, status, expectation", [
    ("empty.jpg", lambda: b"", "failed", "The file is empty (0 bytes)"),
    ("notes.jpg", lambda: b"just some text, renamed", "failed", UNREADABLE),
    ("truncated.jpg", lambda: PORTRAIT.read_bytes()[: len(PORTRAIT.read_bytes()) // 3], "failed", UNREADABLE),
    ("bomb.png", lambda: png_declaring(50_000, 50_000), "failed", "too many pixels to process safely"),
    ("animated.gif", animated_gif, "completed", True),
    ("tiny.png", lambda: encoded(Image.new("RGB", (1, 1), "white"), "PNG"), "completed", False),
    ("sixteen_bit.tiff", sixteen_bit_tiff, "completed", True),
    ("corrupt_exif.jpg", corrupt_exif_jpeg, "completed", True),
    ("broken_icc.jpg", lambda: encoded(portrait(), "JPEG", icc_profile=b"not an icc profile" * 10), "completed", True),
])
def test_each_image_gets_a_clear_answer(face_profile, name, make, status, expectation):
    response = httpx.post(face_profile.requests_url(), files={"img": (name, make())}, headers=face_profile.headers,
                          timeout=120)
    body = response.json()
    assert response.status_code == 200 and body["status"] == status, body
    if status == "failed":
        assert expectation in body["error_message"], body["error_message"]
    else:
        assert body["result"]["face_found"] is expectation
    assert face_profile.sdk().service_status().status == "ok"
