"""Face regions as polygons over the MediaPipe face mesh, rasterised into pixel masks.

"left"/"right" are the subject's own sides (the subject's left eye appears on the image's right),
matching MediaPipe's naming. Masks never overlap and stay inside the face oval, so each region's
share of the head area is a true fraction and the shares add up to at most 1. Where the face
reaches past the image's edge, the regions keep their whole area (like the landmarks, they go on
beyond it) but only their pixels inside the image are measured.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

FACE_OVAL = (
    10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377,
    152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109,
)
LIPS_OUTER = (
    61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291, 375, 321, 405, 314, 17, 84, 181, 91, 146,
)
LIPS_INNER = (
    78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308, 324, 318, 402, 317, 14, 87, 178, 88, 95,
)
RIGHT_EYE = (33, 7, 163, 144, 145, 153, 154, 155, 133, 173, 157, 158, 159, 160, 161, 246)
LEFT_EYE = (263, 249, 390, 373, 374, 380, 381, 382, 362, 398, 384, 385, 386, 387, 388, 466)
RIGHT_EYEBROW = (46, 53, 52, 65, 55, 107, 66, 105, 63, 70)
LEFT_EYEBROW = (276, 283, 282, 295, 285, 336, 296, 334, 293, 300)
NOSE = (
    168, 417, 351, 419, 248, 281, 363, 360, 279, 358, 327, 326, 2, 97, 98, 129, 49, 131, 134,
    51, 3, 196, 122, 193,
)
RIGHT_CHEEK = (117, 118, 101, 36, 203, 206, 216, 207, 187, 147, 123)
LEFT_CHEEK = (346, 347, 330, 266, 423, 426, 436, 427, 411, 376, 352)
FOREHEAD = (
    54, 103, 67, 109, 10, 338, 297, 332, 284, 300, 293, 334, 296, 336, 9, 107, 66, 105, 63, 70,
)

# Claim order: small features first, so a pixel on a shared border belongs to only one region.
REGION_OUTLINES: dict[str, tuple[int, ...]] = {
    "left_eye": LEFT_EYE,
    "right_eye": RIGHT_EYE,
    "left_eyebrow": LEFT_EYEBROW,
    "right_eyebrow": RIGHT_EYEBROW,
    "lips": LIPS_OUTER,
    "nose": NOSE,
    "left_cheek": LEFT_CHEEK,
    "right_cheek": RIGHT_CHEEK,
    "forehead": FOREHEAD,
}
FACE = "face"
REGIONS: tuple[str, ...] = (FACE, *REGION_OUTLINES)
_SUBPIXEL_BITS = 4


@dataclass(frozen=True)
class RegionMasks:
    """Boolean masks over `crop`, the part of the view inside the face's bounding box, which of
    its pixels show the image (`in_frame`), not the black beyond its edges, and which lie inside
    the image at all (`in_image`: their centres do)."""

    crop: np.ndarray
    masks: dict[str, np.ndarray]
    in_frame: np.ndarray
    in_image: np.ndarray

    def pixels(self, *names: str) -> np.ndarray:
        """The (N, 3) RGB pixels of the image covered by the named regions together."""
        union = np.logical_or.reduce([self.masks[name] for name in names])
        return self.crop[union & self.in_frame]

    def area(self, name: str) -> int:
        """Number of pixels in a region, inside the image or beyond its edge."""
        return int(np.count_nonzero(self.masks[name]))

    def area_in_image(self, name: str) -> int:
        """Number of pixels in a region that lie inside the image."""
        return int(np.count_nonzero(self.masks[name] & self.in_image))

    def share_in_frame(self, name: str) -> float:
        """The fraction of a region's pixels that show the image (0 for an empty region)."""
        area = self.area(name)
        return np.count_nonzero(self.masks[name] & self.in_frame) / area if area else 0.0


def region_polygons(points: np.ndarray) -> dict[str, np.ndarray]:
    """Pixel polygons of the face oval and every region, for measuring and drawing alike."""
    outlines = {FACE: FACE_OVAL, **REGION_OUTLINES}
    return {name: points[list(indices)] for name, indices in outlines.items()}


def region_masks(
    points: np.ndarray, rgb: np.ndarray, to_image: np.ndarray, image_shape: tuple[int, ...], reach: float
) -> RegionMasks:
    """Rasterise the regions inside the view `rgb`, each pixel assigned to at most one region.
    A view pixel shows the image (`in_frame`) when `to_image` (the 2x3 matrix from the view's
    coordinates to the image's) puts its centre at least `reach` image pixels inside the edges
    of an image of `image_shape` (align.Crop.reach)."""
    height, width = rgb.shape[:2]
    polygons = region_polygons(points)
    x0, y0 = np.clip(np.floor(polygons[FACE].min(axis=0)), 0, [width, height]).astype(int)
    x1, y1 = np.clip(np.ceil(polygons[FACE].max(axis=0)) + 1, 0, [width, height]).astype(int)
    shape = (max(y1 - y0, 1), max(x1 - x0, 1))
    origin = np.array([x0, y0])

    def fill(polygon: np.ndarray) -> np.ndarray:
        canvas = np.zeros(shape, dtype=np.uint8)
        vertices = np.round((polygon - origin) * (1 << _SUBPIXEL_BITS)).astype(np.int32)
        cv2.fillPoly(canvas, [vertices], 1, lineType=cv2.LINE_8, shift=_SUBPIXEL_BITS)
        return canvas.astype(bool)

    face = fill(polygons[FACE])
    claimed = ~face
    masks = {FACE: face}
    for name in REGION_OUTLINES:
        mask = fill(polygons[name]) & ~claimed
        if name == "lips":
            mask &= ~fill(points[list(LIPS_INNER)])  # the open mouth is not lip
        masks[name] = mask
        claimed |= mask
    centres = np.arange(x0, x0 + shape[1]) + 0.5, np.arange(y0, y0 + shape[0])[:, None] + 0.5
    x, y = (row[0] * centres[0] + row[1] * centres[1] + row[2] for row in to_image)
    def inside(margin: float) -> np.ndarray:
        return (x >= margin) & (x <= image_shape[1] - margin) & (y >= margin) & (y <= image_shape[0] - margin)

    return RegionMasks(
        crop=rgb[y0 : y0 + shape[0], x0 : x0 + shape[1]], masks=masks, in_frame=inside(reach), in_image=inside(0.0)
    )
