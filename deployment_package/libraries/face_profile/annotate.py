"""Draw what was measured onto the portrait, so users can check the landmarks by eye."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from .geometry import MIDBROW, UPPER_LIP, ZYGION_LEFT, ZYGION_RIGHT

REGION_COLORS: dict[str, tuple[int, int, int]] = {
    "face": (255, 255, 255),
    "forehead": (255, 215, 0),
    "left_eyebrow": (255, 120, 0),
    "right_eyebrow": (255, 120, 0),
    "left_eye": (0, 200, 255),
    "right_eye": (0, 200, 255),
    "nose": (170, 90, 255),
    "left_cheek": (0, 230, 120),
    "right_cheek": (0, 230, 120),
    "lips": (255, 40, 90),
}
FWHR_COLOR = (255, 0, 255)
OTHER_FACE_COLOR = (160, 160, 160)


def annotate(
    rgb: np.ndarray, polygons: dict[str, np.ndarray], points: np.ndarray, other_faces: list[np.ndarray]
) -> Image.Image:
    """The portrait with every region outlined and the fWHR width and height lines drawn, and the
    outline of every other face found (corner points), so the profiled one can be told apart."""
    image = Image.fromarray(rgb)
    draw = ImageDraw.Draw(image)
    width = max(1, round(max(image.size) / 400))
    for corners in other_faces:
        outline = [tuple(p) for p in corners.tolist()]
        draw.line(outline + outline[:1], fill=OTHER_FACE_COLOR, width=width)
    for name, polygon in polygons.items():
        outline = [tuple(p) for p in polygon.tolist()]
        draw.line(outline + outline[:1], fill=REGION_COLORS[name], width=width, joint="curve")
    for start, end in ((ZYGION_RIGHT, ZYGION_LEFT), (MIDBROW, UPPER_LIP)):
        draw.line([tuple(points[start]), tuple(points[end])], fill=FWHR_COLOR, width=width)
    return image
