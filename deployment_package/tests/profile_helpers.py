"""Shared helpers for the model-level tests (images, colour-space conversions)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image

PACKAGE = Path(__file__).resolve().parents[1]
ROOT = PACKAGE.parent
IMAGES = PACKAGE / "tests" / "images"
LIBRARIES = PACKAGE / "libraries"
PORTRAITS = ("grace_hopper.jpg", "astronaut.jpg")
NON_FACES = ("chelsea.jpg", "coffee.jpg")

if str(LIBRARIES) not in sys.path:
    sys.path.insert(0, str(LIBRARIES))


def open_rgb(name: str) -> Image.Image:
    with Image.open(IMAGES / name) as image:
        return image.convert("RGB")


def srgb_to_linear(rgb: np.ndarray) -> np.ndarray:
    c = np.asarray(rgb, dtype=np.float64) / 255.0
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(linear: np.ndarray) -> np.ndarray:
    c = np.clip(linear, 0.0, 1.0)
    srgb = np.where(c <= 0.0031308, 12.92 * c, 1.055 * c ** (1 / 2.4) - 0.055)
    return np.round(srgb * 255).astype(np.uint8)


def measurement_names(fields: dict) -> list[str]:
    """Fields that describe the face (null when no face is found)."""
    always = {"face_found", "num_faces", "faces", "detection_attempts", "model_id", "image_width", "image_height"}
    return [name for name in fields if name not in always]
