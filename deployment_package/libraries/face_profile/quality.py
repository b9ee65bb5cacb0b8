"""Image-quality signals that tell a user whether a profile can be trusted."""

from __future__ import annotations

import cv2
import numpy as np

from .color import luma

SHARPNESS_FACE_WIDTH = 256  # the face crop is resized to this width so scores compare across sizes


def face_box(points: np.ndarray, image_shape: tuple[int, ...]) -> np.ndarray:
    """[x_min, y_min, x_max, y_max] of the landmarks, clipped to the image, in pixels."""
    height, width = image_shape[:2]
    low = np.clip(points.min(axis=0), 0, [width, height])
    high = np.clip(points.max(axis=0), 0, [width, height])
    return np.concatenate([low, high])


def sharpness(rgb: np.ndarray, box: np.ndarray) -> float | None:
    """Variance of the Laplacian of the face crop (higher is sharper; blurry faces score < ~50)."""
    x0, y0 = np.floor(box[:2]).astype(int)
    x1, y1 = np.ceil(box[2:]).astype(int)
    crop = rgb[y0:y1, x0:x1]
    if crop.shape[0] < 2 or crop.shape[1] < 2:
        return None
    gray = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY)
    size = (SHARPNESS_FACE_WIDTH, max(1, round(gray.shape[0] * SHARPNESS_FACE_WIDTH / gray.shape[1])))
    gray = cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
    return float(cv2.Laplacian(gray, cv2.CV_64F).var())


def brightness(face_pixels: np.ndarray) -> float:
    """Mean luma (0-255) of the face's pixels: flags under- and over-exposed portraits."""
    return float(luma(face_pixels).mean())


def eyes_open_score(blendshapes: dict[str, float]) -> float:
    """1 when both eyes are wide open, 0 when both are closed (from the blink blendshapes)."""
    return 1.0 - (blendshapes["eyeBlinkLeft"] + blendshapes["eyeBlinkRight"]) / 2


def smile_score(blendshapes: dict[str, float]) -> float:
    """0 for a neutral mouth, towards 1 for a broad smile (from the smile blendshapes)."""
    return (blendshapes["mouthSmileLeft"] + blendshapes["mouthSmileRight"]) / 2
