"""Turn whatever image a user uploads into one upright 8-bit sRGB array of bounded size.

Uploads come in every flavour (JPEG, PNG with alpha, WebP, grayscale, CMYK, 16-bit, phone
portraits stored sideways with an EXIF orientation tag), so the model measures all of them the
same way. Large images are shrunk before inference: landmarks and colours do not gain from more
pixels, and runtime would grow with them. The search for small faces may decode the upload again
at a finer scale (LoadedImage.finer), only when it needs to.
"""

from __future__ import annotations

import io
import math
import os
import struct
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image, ImageCms

from .errors import PublicError

ImageSource = str | os.PathLike | Image.Image

MAX_ANALYSIS_SIDE = 1024
# Pillow's default bomb threshold. Decoded, such an image takes up to 4 bytes a pixel (RGBA, 32-bit
# "I"), ~0.35 GB; shrinking it by whole factors before converting it (_reduced), and converting in
# place, keeps the peak near twice that, within an instance's 2 GB, at the analysis size and finer.
MAX_INPUT_PIXELS = 89_478_485
# JPEG's own limit (PNG and TIFF allow more). A thin image within the pixel limit could otherwise be
# 89,000,000 x 1: decoded again for the finer search (LoadedImage.finer) at 0.8, resizing it took
# 4.1 GB, and a 20,000,000 x 4 one was cut into ~100,000 tiles (117 s an attempt).
MAX_SIDE = 65_535
# libtiff allocates a TIFF's whole tile before decoding it: a 2 MB file of 100 x 100 pixels
# declaring one 46336 x 46336 deflate tile (of zeros) took 2.1 GB, whatever the pixel limit says.
# A tile above this size is refused when it reaches past the image (see _check_tiff_tiles).
MAX_TIFF_TILE_BYTES = 64 * 1024 * 1024
_SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N")
_REDUCIBLE_MODES = ("L", "RGB", "CMYK", "I", "F")  # Image.reduce averages these as they are
_TRANSPOSITIONS = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}  # EXIF orientation -> what turns the stored pixels upright (as ImageOps.exif_transpose does)
_SIDEWAYS = (Image.Transpose.TRANSPOSE, Image.Transpose.ROTATE_270, Image.Transpose.TRANSVERSE,
             Image.Transpose.ROTATE_90)
_ORIENTATION_TAG = 0x0112
_BACKGROUND = (255, 255, 255)  # under transparent pixels
_SRGB = ImageCms.createProfile("sRGB")
# The only decoders Image.open may pick ("JPEG" opens MPO too: phone JPEGs with a second picture).
# Others are refused before they read a byte of pixels: EPS (it runs Ghostscript), DDS, PSD, ...
FORMATS = ("JPEG", "PNG", "WEBP", "TIFF", "BMP", "GIF")
_SUPPORTED = "supported: JPEG, PNG, WebP, TIFF, BMP, GIF"
_UNREADABLE = f"The file is not a readable image ({_SUPPORTED})."
_EMPTY = f"The file is empty (0 bytes): upload an image ({_SUPPORTED})."


class _Undecodable(Exception):
    """Pillow could not open or decode the file, whatever error its decoder raised."""


@dataclass(frozen=True)
class LoadedImage:
    """Upright RGB pixels at analysis resolution plus the size the user's image really has, and
    where they came from (to decode them again at a finer scale)."""

    rgb: np.ndarray
    original_size: tuple[int, int]
    source: ImageSource

    @property
    def scale(self) -> float:
        """Analysis pixels per original pixel (1.0 unless the image was downscaled), along the
        longer side: the shorter one was rounded to whole pixels (a 26 x 1290 image is 21 x 1024:
        its width said 0.81, its height 0.79)."""
        return max(self.rgb.shape[:2]) / max(self.original_size)

    def finer(self, scale: float) -> LoadedImage:
        """The same upload decoded again, at `scale` pixels per original pixel (or at its full
        size, when that is smaller)."""
        return load_image(self.source, max_side=round(max(self.original_size) * scale))


def load_image(source: ImageSource, max_side: int = MAX_ANALYSIS_SIDE) -> LoadedImage:
    """Decode `source` (a path or a PIL image) with its longer side at most `max_side`, raising
    PublicError if it is not a usable image."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            if isinstance(source, Image.Image):
                # Not drafted: that would shrink the caller's image for good (and for `finer`).
                return _prepare(source, source, max_side, draft=False)
            with _decoding():
                opened = Image.open(source, formats=FORMATS)
            with opened as image:
                return _prepare(image, source, max_side, draft=True)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise PublicError(
            f"The image has too many pixels to process safely (limit {MAX_INPUT_PIXELS:,} pixels)."
        ) from exc
    except (_Undecodable, OSError, ValueError, SyntaxError, EOFError) as exc:
        empty = not isinstance(source, Image.Image) and os.path.isfile(source) and os.path.getsize(source) == 0
        raise PublicError(_EMPTY if empty else _UNREADABLE) from exc


@contextmanager
def _decoding() -> Iterator[None]:
    """Any error of Pillow's decoders (a damaged file may raise NotImplementedError, IndexError,
    struct.error, ...) as _Undecodable; a decompression bomb, or running out of memory, stays itself."""
    try:
        yield
    except (Image.DecompressionBombError, Image.DecompressionBombWarning, MemoryError):
        raise  # a valid image too large for the instance's memory is no unreadable file
    except Exception as exc:
        raise _Undecodable(f"{type(exc).__name__}: {exc}") from exc


def _prepare(image: Image.Image, source: ImageSource, max_side: int, *, draft: bool) -> LoadedImage:
    if image.width * image.height > MAX_INPUT_PIXELS:
        raise Image.DecompressionBombError(f"{image.width}x{image.height} pixels")
    width, height = image.size
    if max(width, height) > MAX_SIDE:
        raise PublicError(
            f"The image is {width:,} x {height:,} pixels: a side longer than {MAX_SIDE:,} pixels is not supported."
        )
    _check_tiff_tiles(image)
    with _decoding():
        if draft and image.format in ("JPEG", "MPO"):  # MPO: a JPEG (and more) from a phone
            image.draft(image.mode, _analysis_size(image.size, max_side))  # libjpeg decodes at a reduced scale
        image.load()
    white = _white_point(image)
    # Read once loaded: Pillow's TIFF plugin reports the upright size and applies the orientation
    # itself as it loads, dropping the tag. Only a transposition done here turns the size.
    transposition = _TRANSPOSITIONS.get(_orientation(image))
    original_size = (height, width) if transposition in _SIDEWAYS else (width, height)
    reduced = _reduced(image, max_side, white)
    upright = reduced if transposition is None else reduced.transpose(transposition)
    rgb = np.asarray(_to_srgb(upright, white))
    size = (rgb.shape[1], rgb.shape[0])
    target = _analysis_size(size, max_side)
    if target != size:
        # Below 2x, bilinear already reads every source pixel and is ~10x faster than area
        # averaging; images always land here because libjpeg or _reduced did the coarse reduction.
        shrink = max(size) / max(target)
        interpolation = cv2.INTER_LINEAR if shrink < 2 else cv2.INTER_AREA
        rgb = cv2.resize(rgb, target, interpolation=interpolation)
    return LoadedImage(rgb=rgb, original_size=original_size, source=source)


def _check_tiff_tiles(image: Image.Image) -> None:
    """Refuse a TIFF whose tiles (tags 322 x 323) take more than MAX_TIFF_TILE_BYTES and reach past
    the image rounded up to 16 px (TIFF tiles' sides are multiples of 16), before libtiff allocates
    one. Strips need no check: libtiff reads at most the image's height of rows per strip."""
    tags = getattr(image, "tag_v2", None)
    if image.format != "TIFF" or tags is None or not tags.get(322) or not tags.get(323):
        return
    tile_width, tile_length = int(tags[322]), int(tags[323])
    width, height = int(tags.get(256, 0)), int(tags.get(257, 0))  # as stored (image.size may be turned)
    bits = tags.get(258, 1)
    bits_per_sample = max(bits) if isinstance(bits, tuple) else int(bits)
    tile_bytes = tile_width * tile_length * int(tags.get(277, 1)) * math.ceil(bits_per_sample / 8)
    if tile_bytes > MAX_TIFF_TILE_BYTES and (tile_width > -(-width // 16) * 16 or tile_length > -(-height // 16) * 16):
        raise PublicError(
            f"The TIFF declares tiles of {tile_width:,} x {tile_length:,} pixels ({tile_bytes / 2**20:,.0f} MB each) "
            f"for an image of {width:,} x {height:,}: too large to decode safely. "
            "Save it again with smaller tiles, or untiled."
        )


def _white_point(image: Image.Image) -> float:
    """The sample value that is white. 16-bit modes say 65535; an "I" (32-bit integer) or "F"
    (float) image says nothing, so its values tell: the smallest of 1.0 (floats only), 255 and 65535
    that holds them all, else its largest value. (Pillow's own conversion clips both at 255: a float
    image of 0-1 came out black, an "I" one holding 8-bit values was read as 16-bit, also black.)"""
    if image.mode in _SIXTEEN_BIT_MODES:
        return 65535
    if image.mode not in ("I", "F"):
        return 255
    high = image.getextrema()[1]
    for white in (1.0, 255, 65535) if image.mode == "F" else (255, 65535):
        if high <= white:
            return white
    return high


def _orientation(image: Image.Image) -> int:
    """The EXIF orientation; 1 (upright) when the EXIF block is missing or corrupt, as viewers do."""
    try:
        return image.getexif().get(_ORIENTATION_TAG, 1)
    except (SyntaxError, ValueError, OSError, struct.error):
        return 1


def _reduced(image: Image.Image, max_side: int, white: float) -> Image.Image:
    """`image` shrunk by the largest whole factor that keeps its longer side at least `max_side`
    (box averaging, as cv2.INTER_AREA), before anything converts it at full size."""
    factor = max(image.size) // max_side
    if factor < 2:
        return image
    if image.mode in _SIXTEEN_BIT_MODES:
        image = image.convert("I")  # Image.reduce has no 16-bit modes; "I" holds their values
    elif image.mode not in _REDUCIBLE_MODES or "transparency" in image.info:
        return _to_srgb(image, white).reduce(factor)  # composite alpha, expand a palette, before averaging
    reduced = image.reduce(factor)
    if "icc_profile" in image.info:
        reduced.info["icc_profile"] = image.info["icc_profile"]
    return reduced


def _analysis_size(size: tuple[int, int], max_side: int) -> tuple[int, int]:
    longest = max(size)
    if longest <= max_side:
        return size
    factor = max_side / longest
    return (max(1, round(size[0] * factor)), max(1, round(size[1] * factor)))


def _to_srgb(image: Image.Image, white: float) -> Image.Image:
    """Convert any Pillow mode to 8-bit sRGB, honouring alpha, ICC profiles and, for 16-bit,
    32-bit and float samples, `white` (see _white_point): Pillow's conversion clips them at 255."""
    if image.mode in (*_SIXTEEN_BIT_MODES, "I", "F"):
        if white == 65535 and image.mode != "F":
            # Rounded to the nearest level in place, in integers: float64 took 8 bytes a pixel, thrice.
            samples = np.array(image, dtype=np.int32)
            np.clip(samples, 0, 65535, out=samples)
            samples += 128
            samples //= 257
        else:
            samples = np.array(image, dtype=np.float32)  # 4 bytes a pixel, as "I" and "F" take
            np.clip(samples, 0, white, out=samples)
            samples *= 255 / white
            np.rint(samples, out=samples)
        return Image.fromarray(samples.astype(np.uint8)).convert("RGB")
    if "A" in image.getbands() or "transparency" in image.info:
        rgba = image if image.mode == "RGBA" else image.convert("RGBA")
        composite = Image.new("RGB", rgba.size, _BACKGROUND)
        composite.paste(rgba, mask=rgba)  # over white: what alpha_composite gives, with fewer copies
        return composite
    icc = image.info.get("icc_profile")
    if icc and image.mode in ("RGB", "CMYK"):
        try:
            source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            return ImageCms.profileToProfile(image, source, _SRGB, outputMode="RGB")
        except (ImageCms.PyCMSError, OSError):  # LittleCMS refuses a damaged profile with OSError
            return image.convert("RGB")  # broken embedded profile: treat the pixels as sRGB
    return image if image.mode == "RGB" else image.convert("RGB")
