"""Run MediaPipe's Face Landmarker and hand back plain numpy data about each face.

Keeping MediaPipe behind this one module means the measuring code only sees arrays, and the live
landmarker (a native handle that cannot be pickled) has exactly one owner.
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass
from typing import Callable

import cv2
import mediapipe as mp
import numpy as np
from mediapipe.tasks.python import vision
from mediapipe.tasks.python.core.base_options import BaseOptions

MAX_FACES = 5
_PAD_FRACTION = 0.5


@dataclass(frozen=True)
class Face:
    """One detected face: 478 landmark pixels (x, y), 52 blendshape scores and its 3D pose."""

    points: np.ndarray
    blendshapes: dict[str, float]
    transform: np.ndarray

    @property
    def center(self) -> np.ndarray:
        """Centre of the landmark bounding box, in pixels."""
        return (self.points.min(axis=0) + self.points.max(axis=0)) / 2

    @property
    def box_area(self) -> float:
        """Area of the landmark bounding box, used to pick the main face."""
        width, height = self.points.max(axis=0) - self.points.min(axis=0)
        return float(width * height)

    def moved(self, points: np.ndarray) -> Face:
        """The same face with its landmarks placed at `points` (e.g. after rotating the image)."""
        return Face(points=points, blendshapes=self.blendshapes, transform=self.transform)


class LandmarkDetector:
    """A MediaPipe Face Landmarker created from in-memory weights (no file or download needed)."""

    def __init__(self, weights: bytes) -> None:
        options = vision.FaceLandmarkerOptions(
            base_options=BaseOptions(model_asset_buffer=weights),
            running_mode=vision.RunningMode.IMAGE,
            num_faces=MAX_FACES,
            output_face_blendshapes=True,
            output_facial_transformation_matrixes=True,
        )
        self._landmarker = vision.FaceLandmarker.create_from_options(options)
        # Close the native graph when this detector is dropped, and at exit before
        # concurrent.futures stops the executor MediaPipe routes every native call through
        # (closing any later fails and prints tracebacks at interpreter exit).
        close = weakref.finalize(self, self._landmarker.close)
        threading._register_atexit(close)

    def detect(self, rgb: np.ndarray) -> list[Face]:
        """All faces in an HxWx3 uint8 RGB array, landmarks in that array's pixel coordinates."""
        height, width = rgb.shape[:2]
        image = mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(rgb))
        result = self._landmarker.detect(image)
        faces = []
        for landmarks, blendshapes, transform in zip(
            result.face_landmarks, result.face_blendshapes, result.facial_transformation_matrixes
        ):
            points = np.array([(lm.x * width, lm.y * height) for lm in landmarks], dtype=np.float64)
            scores = {category.category_name: float(category.score) for category in blendshapes}
            faces.append(Face(points=points, blendshapes=scores, transform=np.asarray(transform)))
        return faces


def _as_is(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return rgb, np.zeros(2)


def _padded(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Add a border: the face detector misses faces that fill or overflow the frame."""
    pad = int(max(rgb.shape[:2]) * _PAD_FRACTION)
    padded = cv2.copyMakeBorder(rgb, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=(0, 0, 0))
    return padded, np.array([pad, pad], dtype=np.float64)


def _contrast_stretched(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Equalise luminance locally: the detector misses faces in dark or washed-out photos."""
    ycrcb = cv2.cvtColor(rgb, cv2.COLOR_RGB2YCrCb)
    ycrcb[..., 0] = cv2.createCLAHE(clipLimit=3.0, tileGridSize=(8, 8)).apply(ycrcb[..., 0])
    return cv2.cvtColor(ycrcb, cv2.COLOR_YCrCb2RGB), np.zeros(2)


# Each attempt detects on a different view of the image; landmarks are mapped back by the offset.
ATTEMPTS: tuple[Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]], ...] = (
    _as_is,
    _padded,
    _contrast_stretched,
)


def detect_faces(
    detector: LandmarkDetector, rgb: np.ndarray, num_attempts: int
) -> tuple[list[Face], int]:
    """Faces found by the first successful attempt (of at most `num_attempts`) and attempts used."""
    tried = min(num_attempts, len(ATTEMPTS))
    for attempt, view in enumerate(ATTEMPTS[:tried], start=1):
        image, offset = view(rgb)
        faces = detector.detect(image)
        if faces:
            return [face.moved(face.points - offset) for face in faces], attempt
    return [], tried


def largest_face(faces: list[Face]) -> Face:
    """The face taking the most room in the picture: the subject of a portrait."""
    return max(faces, key=lambda face: face.box_area)


def nearest_face(faces: list[Face], center: np.ndarray) -> Face:
    """The face whose centre is closest to `center` (to find the same face again after a warp)."""
    return min(faces, key=lambda face: float(np.linalg.norm(face.center - center)))
