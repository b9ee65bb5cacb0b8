"""Run MediaPipe's face detector and Face Landmarker and hand back plain numpy data about each face.

Keeping MediaPipe behind this one module means the measuring code only sees arrays, and each live
MediaPipe task (a native handle that cannot be pickled) has exactly one owner. Both tasks are built
from the one Face Landmarker bundle: its own face detector (`face_detector.tflite`, the short-range
BlazeFace model) runs alone to find faces, the whole landmarker to measure one.
"""

from __future__ import annotations

import io
import threading
import weakref
import zipfile
from dataclasses import dataclass
from typing import Any

import mediapipe as mp
import numpy as np
from mediapipe.tasks.python import vision
from mediapipe.tasks.python.core.base_options import BaseOptions

# A view is centred on one face, but a neighbour's face may reach into it: find a few, keep the
# nearest (see nearest_face).
MAX_FACES_PER_VIEW = 3
DETECTOR_IN_BUNDLE = "face_detector.tflite"
MIN_DETECTION_SCORE = 0.5  # the Face Landmarker's own default for its detector
# BlazeFace keypoints: right eye, left eye, nose tip, mouth, then the two ear tragions. The first
# four give a face centre that, unlike the whole-pixel box, moves smoothly with the face, so the
# same face gets the same view (the landmarks shift by a percent with a 1 px shift of the view).
_FEATURES = 4


@dataclass(frozen=True)
class Face:
    """One landmarked face: 478 landmark pixels (x, y), 52 blendshape scores and its 3D pose."""

    points: np.ndarray
    blendshapes: dict[str, float]
    transform: np.ndarray

    @property
    def center(self) -> np.ndarray:
        """Centre of the landmark bounding box, in pixels."""
        return (self.points.min(axis=0) + self.points.max(axis=0)) / 2

    def moved(self, points: np.ndarray) -> Face:
        """The same face with its landmarks placed at `points` (e.g. after rotating the image)."""
        return Face(points=points, blendshapes=self.blendshapes, transform=self.transform)

    def turned_half(self, width: float, height: float) -> Face:
        """The same face seen in its image turned half round (180 degrees about the centre of its
        `width` x `height` pixels): landmarks and pose, whose roll turns by 180 degrees."""
        # Turning the image about its centre turns the camera about its axis: x and y change sign.
        return Face(
            points=np.array([width, height], dtype=np.float64) - self.points,
            blendshapes=self.blendshapes,
            transform=np.diag([-1.0, -1.0, 1.0, 1.0]) @ self.transform,
        )


@dataclass(frozen=True)
class Detection:
    """A face found by the detector: its box [x_min, y_min, x_max, y_max] in whole pixels, the
    centre of its eyes, nose tip and mouth (to a fraction of a pixel) and its score."""

    box: np.ndarray
    center: np.ndarray
    score: float

    @property
    def side(self) -> float:
        """The longer side of the box (BlazeFace boxes are square, from brows to chin)."""
        return float(max(self.box[2] - self.box[0], self.box[3] - self.box[1]))

    @property
    def area(self) -> float:
        return float((self.box[2] - self.box[0]) * (self.box[3] - self.box[1]))

    def mapped(self, matrix: np.ndarray) -> Detection:
        """The same detection in other pixel coordinates: `matrix` (2x3) may move and scale, not
        rotate (e.g. from a tile or a view back to the whole frame)."""
        corners = self.box.reshape(2, 2) @ matrix[:, :2].T + matrix[:, 2]
        center = self.center @ matrix[:, :2].T + matrix[:, 2]
        return Detection(box=corners.reshape(4), center=center, score=self.score)


def _mp_image(rgb: np.ndarray) -> mp.Image:
    return mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(rgb))


def _closer(owner: object, task: Any) -> weakref.finalize:
    """Closes the native graph when called, when `owner` is dropped, or at exit before
    concurrent.futures stops the executor MediaPipe routes every native call through (closing any
    later fails and prints tracebacks at interpreter exit); whichever comes first."""
    close = weakref.finalize(owner, task.close)
    threading._register_atexit(close)
    return close


class LandmarkDetector:
    """A MediaPipe Face Landmarker created from in-memory weights (no file or download needed)."""

    def __init__(self, weights: bytes) -> None:
        options = vision.FaceLandmarkerOptions(
            base_options=BaseOptions(model_asset_buffer=weights),
            running_mode=vision.RunningMode.IMAGE,
            num_faces=MAX_FACES_PER_VIEW,
            output_face_blendshapes=True,
            output_facial_transformation_matrixes=True,
        )
        self._landmarker = vision.FaceLandmarker.create_from_options(options)
        self.close = _closer(self, self._landmarker)

    def detect(self, rgb: np.ndarray) -> list[Face]:
        """All faces in an HxWx3 uint8 RGB array, landmarks in that array's pixel coordinates."""
        height, width = rgb.shape[:2]
        result = self._landmarker.detect(_mp_image(rgb))
        faces = []
        for landmarks, blendshapes, transform in zip(
            result.face_landmarks, result.face_blendshapes, result.facial_transformation_matrixes, strict=False
        ):
            points = np.array([(lm.x * width, lm.y * height) for lm in landmarks], dtype=np.float64)
            scores = {category.category_name: float(category.score) for category in blendshapes}
            faces.append(Face(points=points, blendshapes=scores, transform=np.asarray(transform)))
        return faces


class FaceFinder:
    """The face detector inside the Face Landmarker bundle, run alone: boxes and scores only,
    several times cheaper than landmarking, so it can look at many tiles of a frame."""

    def __init__(self, landmarker_weights: bytes) -> None:
        with zipfile.ZipFile(io.BytesIO(landmarker_weights)) as bundle:
            weights = bundle.read(DETECTOR_IN_BUNDLE)
        options = vision.FaceDetectorOptions(
            base_options=BaseOptions(model_asset_buffer=weights),
            running_mode=vision.RunningMode.IMAGE,
            min_detection_confidence=MIN_DETECTION_SCORE,
        )
        self._detector = vision.FaceDetector.create_from_options(options)
        self.close = _closer(self, self._detector)

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        """Every face the detector sees in an HxWx3 uint8 RGB array, boxes in its pixels."""
        height, width = rgb.shape[:2]
        found = []
        for detection in self._detector.detect(_mp_image(rgb)).detections:
            box = detection.bounding_box
            corners = (box.origin_x, box.origin_y, box.origin_x + box.width, box.origin_y + box.height)
            features = [(point.x * width, point.y * height) for point in detection.keypoints[:_FEATURES]]
            found.append(Detection(
                box=np.array(corners, dtype=np.float64),
                center=np.mean(features, axis=0),
                score=float(detection.categories[0].score),
            ))
        return found


def nearest_face(faces: list[Face], center: np.ndarray) -> Face:
    """The face whose centre is closest to `center` (to find the same face again after a warp)."""
    return min(faces, key=lambda face: float(np.linalg.norm(face.center - center)))
