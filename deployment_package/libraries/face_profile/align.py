"""Rotate a portrait so the eyes are level before regions and geometry are measured."""

from __future__ import annotations

import math

import cv2
import numpy as np


def rotate_image(rgb: np.ndarray, degrees: float) -> tuple[np.ndarray, np.ndarray]:
    """Rotate counter-clockwise by `degrees` on a canvas grown to keep every pixel.

    Returns the rotated image and the 2x3 affine matrix that maps original pixel coordinates
    into it (see `transform_points`).
    """
    height, width = rgb.shape[:2]
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), degrees, 1.0)
    cos, sin = abs(math.cos(math.radians(degrees))), abs(math.sin(math.radians(degrees)))
    new_width = int(math.ceil(width * cos + height * sin))
    new_height = int(math.ceil(width * sin + height * cos))
    matrix[:, 2] += (new_width - width) / 2, (new_height - height) / 2
    rotated = cv2.warpAffine(
        rgb, matrix, (new_width, new_height), flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0),
    )
    return rotated, matrix


def transform_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Apply a 2x3 affine matrix to (N, 2) pixel coordinates."""
    return points @ matrix[:, :2].T + matrix[:, 2]
