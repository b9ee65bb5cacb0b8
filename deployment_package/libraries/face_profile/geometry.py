"""Facial geometry from landmarks: eye-line roll, facial width-to-height ratio, head pose.

Landmark indices refer to MediaPipe's 478-point face mesh; "left"/"right" are the subject's own.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

RIGHT_EYE_CORNERS = (33, 133)  # outer, inner corner of the subject's right eye
LEFT_EYE_CORNERS = (263, 362)  # outer, inner corner of the subject's left eye
ZYGION_RIGHT = 234  # widest point of the face oval at the right cheekbone
ZYGION_LEFT = 454  # widest point of the face oval at the left cheekbone
MIDBROW = 8  # midline point level with the lower edge of the eyebrows
UPPER_LIP = 0  # labrale superius: top of the upper lip on the midline


@dataclass(frozen=True)
class FaceFrame:
    """Unit axes of the face in the image: `across` follows the eye line, `down` is orthogonal."""

    across: np.ndarray
    down: np.ndarray


@dataclass(frozen=True)
class Fwhr:
    """Facial width-to-height ratio (Carré & McCormick 2008) and its two pixel lengths."""

    ratio: float
    bizygomatic_width: float
    upper_face_height: float


@dataclass(frozen=True)
class HeadPose:
    """Head rotation in degrees.

    yaw > 0: face turned towards the image's right (the subject's left);
    pitch > 0: head tilted forward (chin down); roll > 0: head tilted counter-clockwise as seen.
    """

    yaw: float
    pitch: float
    roll: float


def eye_centers(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centres (right eye, left eye) of the eyes as the midpoints of their corners."""
    right = points[list(RIGHT_EYE_CORNERS)].mean(axis=0)
    left = points[list(LEFT_EYE_CORNERS)].mean(axis=0)
    return right, left


def eye_roll_degrees(points: np.ndarray) -> float:
    """Slope of the line through the eye centres; > 0 when the face is tilted counter-clockwise."""
    right, left = eye_centers(points)
    dx, dy = left - right
    return math.degrees(math.atan2(-dy, dx))  # image y points down


def face_frame(points: np.ndarray) -> FaceFrame:
    """Axes that follow the face, so lengths do not depend on how the head is tilted."""
    right, left = eye_centers(points)
    across = (left - right) / np.linalg.norm(left - right)
    return FaceFrame(across=across, down=np.array([-across[1], across[0]]))


def fwhr(points: np.ndarray) -> Fwhr:
    """Bizygomatic width (zygion to zygion) over upper-face height (mid-brow to upper lip),
    both measured along the face's own axes."""
    frame = face_frame(points)
    width = abs(float((points[ZYGION_LEFT] - points[ZYGION_RIGHT]) @ frame.across))
    height = abs(float((points[UPPER_LIP] - points[MIDBROW]) @ frame.down))
    return Fwhr(ratio=width / height, bizygomatic_width=width, upper_face_height=height)


def head_pose(transform: np.ndarray) -> HeadPose:
    """Euler angles of MediaPipe's facial transformation matrix (R = Rz(roll) Ry(yaw) Rx(pitch),
    camera axes x right, y up, z towards the viewer)."""
    rotation = np.asarray(transform)[:3, :3]
    yaw = math.degrees(math.asin(float(np.clip(-rotation[2, 0], -1.0, 1.0))))
    pitch = math.degrees(math.atan2(rotation[2, 1], rotation[2, 2]))
    roll = math.degrees(math.atan2(rotation[1, 0], rotation[0, 0]))
    return HeadPose(yaw=yaw, pitch=pitch, roll=roll)
