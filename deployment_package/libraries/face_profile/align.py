"""Views of the image centred on one face: cropped and scaled to where the landmarker works well,
then rotated so the eyes are level. Each view comes with the affine matrix that maps image pixel
coordinates into it, so anything measured in a view can be reported in the image's own pixels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

# The view is this many face-box sides wide: the landmarker's own detector then finds the face
# at a comfortable third of its input, with room for the forehead and chin, and blank border
# where the face reaches the image's edge.
CROP_FACTOR = 3.0
MIN_FACE_SIDE = 96  # px: smaller faces are enlarged so their box is this wide in the view
MAX_VIEW_SIDE = 1024  # px: views of larger faces (close-ups) are shrunk to this


@dataclass(frozen=True)
class Crop:
    """A square of the image (it may reach beyond the image's edges) and the size of its view."""

    origin: np.ndarray  # top-left corner, in image pixels (fractional)
    side: float  # in image pixels
    size: int  # in view pixels

    @property
    def scale(self) -> float:
        """View pixels per image pixel."""
        return self.size / self.side

    @property
    def matrix(self) -> np.ndarray:
        """2x3 affine matrix mapping image pixel coordinates into the view."""
        x, y = -self.origin * self.scale
        return np.array([[self.scale, 0.0, x], [0.0, self.scale, y]])

    @property
    def reach(self) -> float:
        """How far from a view pixel's centre (in image pixels) the image pixels that `apply`
        interpolates it from may lie, or those of a pixel of the view rotated by `rotate_image`:
        a view pixel whose centre is closer than this to the image's edge may be partly black."""
        interpolation = 1.5 if self.scale > 1 else 0.5 / self.scale  # cubic, or linear once shrunk
        return interpolation + 1.0 / self.scale

    def apply(self, rgb: np.ndarray) -> np.ndarray:
        """The view's pixels; outside the image they are black (see `reach`)."""
        matrix, interpolation = self.matrix, cv2.INTER_CUBIC if self.scale > 1 else cv2.INTER_LINEAR
        if self.scale < 1:  # shrink by area averaging first: warpAffine would alias
            shrunk = cv2.resize(rgb, None, fx=self.scale, fy=self.scale, interpolation=cv2.INTER_AREA)
            matrix[:, :2] *= [rgb.shape[1] / shrunk.shape[1], rgb.shape[0] / shrunk.shape[0]]
            rgb = shrunk
        # Coordinates here are continuous (a pixel's centre at +0.5); warpAffine's are pixel indices.
        matrix[:, 2] += (np.diag(matrix[:, :2]) - 1) / 2
        return cv2.warpAffine(rgb, matrix, (self.size, self.size), flags=interpolation,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))


def crop_around(center: np.ndarray, face_side: float) -> Crop:
    """The view of a face centred at `center` whose box is `face_side` pixels wide: CROP_FACTOR
    box sides across, enlarged so the face is at least MIN_FACE_SIDE wide, or shrunk so the view
    is at most MAX_VIEW_SIDE."""
    side = max(face_side, 1.0) * CROP_FACTOR
    scale = max(MIN_FACE_SIDE / max(face_side, 1.0), 1.0) if side <= MAX_VIEW_SIDE else MAX_VIEW_SIDE / side
    origin = np.asarray(center, dtype=np.float64) - side / 2
    return Crop(origin=origin, side=side, size=max(round(side * scale), 1))


def rotate_image(rgb: np.ndarray, degrees: float) -> tuple[np.ndarray, np.ndarray]:
    """Rotate counter-clockwise by `degrees` on a canvas grown to keep every pixel.

    Returns the rotated image and the 2x3 affine matrix that maps original pixel coordinates
    into it (see `transform_points`).
    """
    height, width = rgb.shape[:2]
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), degrees, 1.0)
    cos, sin = abs(math.cos(math.radians(degrees))), abs(math.sin(math.radians(degrees)))
    new_width = math.ceil(width * cos + height * sin)
    new_height = math.ceil(width * sin + height * cos)
    matrix[:, 2] += (new_width - width) / 2, (new_height - height) / 2
    rotated = cv2.warpAffine(
        rgb, matrix, (new_width, new_height), flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0),
    )
    return rotated, matrix


def transform_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Apply a 2x3 affine matrix to (N, 2) pixel coordinates."""
    return points @ matrix[:, :2].T + matrix[:, 2]


def translation(offset: np.ndarray) -> np.ndarray:
    """The 2x3 affine matrix that moves points by `offset` (x, y)."""
    return np.array([[1.0, 0.0, offset[0]], [0.0, 1.0, offset[1]]])


def then(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """The 2x3 affine matrix that applies `first`, then `second`."""
    return np.hstack([second[:, :2] @ first[:, :2], second[:, :2] @ first[:, 2:] + second[:, 2:]])
