"""Turn an image into a face profile: detect, optionally level the eyes, then measure.

Lengths and areas are reported in pixels of the uploaded image (undoing any downscaling), so
they do not depend on the analysis resolution.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .align import rotate_image, transform_points
from .annotate import annotate
from .color import ita_category, ita_degrees, summarize_rgb
from .geometry import eye_roll_degrees, fwhr, head_pose
from .image_io import LoadedImage
from .landmarks import Face, LandmarkDetector, detect_faces, largest_face, nearest_face
from .profile import FaceProfile, profile_fields
from .quality import brightness, eyes_open_score, face_box, sharpness, smile_score
from .regions import FACE, REGION_OUTLINES, RegionMasks, region_masks, region_polygons


def profile_image(
    detector: LandmarkDetector,
    image: LoadedImage,
    *,
    sampling_strategy: str,
    align_face: bool,
    num_attempts: int,
    model_id: str,
) -> FaceProfile:
    """Profile the largest face in `image`; with no face, every measurement is null."""
    faces, attempts = detect_faces(detector, image.rgb, num_attempts)
    known = {
        "face_found": bool(faces),
        "num_faces": len(faces),
        "detection_attempts": attempts,
        "model_id": model_id,
        "image_width": image.original_size[0],
        "image_height": image.original_size[1],
    }
    if not faces:
        return FaceProfile(fields=profile_fields(**known), annotated_image=None)

    face = largest_face(faces)
    eye_roll = eye_roll_degrees(face.points)
    rotation = -eye_roll if align_face else 0.0
    rgb, measured = _leveled(detector, image.rgb, face, rotation) if align_face else (image.rgb, face)
    masks = region_masks(measured.points, rgb)
    pose = head_pose(face.transform)
    ratio = fwhr(measured.points)
    box = face_box(face.points, image.rgb.shape)
    to_original = 1.0 / image.scale

    fields = profile_fields(
        **known,
        **_region_fields(masks, sampling_strategy),
        face_box=[float(v) for v in box * to_original],
        face_share_of_image=masks.area(FACE) / (image.rgb.shape[0] * image.rgb.shape[1]),
        head_area_px=masks.area(FACE) * to_original**2,
        fwhr=ratio.ratio,
        bizygomatic_width_px=ratio.bizygomatic_width * to_original,
        upper_face_height_px=ratio.upper_face_height * to_original,
        yaw_degrees=pose.yaw,
        pitch_degrees=pose.pitch,
        roll_degrees=pose.roll,
        eye_roll_degrees=eye_roll,
        img_rot_degrees=rotation,
        eye_slope_degrees=eye_roll_degrees(measured.points),
        sharpness=sharpness(image.rgb, box),
        brightness=brightness(masks.pixels(FACE)),
        eyes_open_score=eyes_open_score(face.blendshapes),
        smile_score=smile_score(face.blendshapes),
    )
    annotated = annotate(rgb, region_polygons(measured.points), measured.points)
    return FaceProfile(fields=fields, annotated_image=annotated)


def _leveled(
    detector: LandmarkDetector, rgb: np.ndarray, face: Face, degrees: float
) -> tuple[np.ndarray, Face]:
    """The image rotated to level the eyes and the face re-detected in it; if re-detection
    fails, the original landmarks are carried over by the same rotation."""
    rotated, matrix = rotate_image(rgb, degrees)
    carried = face.moved(transform_points(face.points, matrix))
    found = detector.detect(rotated)
    return rotated, (nearest_face(found, carried.center) if found else carried)


def _region_fields(masks: RegionMasks, strategy: str) -> dict[str, Any]:
    """Colour and head-area share of every region, plus ITA° skin tone of cheeks and forehead."""
    head_area = masks.area(FACE)
    fields: dict[str, Any] = {}
    for name in masks.masks:
        color = _color(masks.pixels(name), strategy)
        fields[f"rgb_of_{name}"] = None if color is None else [float(v) for v in color]
        if name in REGION_OUTLINES:
            fields[f"pct_of_head_{name}"] = 100.0 * masks.area(name) / head_area
    for label, regions in (("cheeks", ("left_cheek", "right_cheek")), ("forehead", ("forehead",))):
        color = _color(masks.pixels(*regions), strategy)
        ita = None if color is None else ita_degrees(color)
        fields[f"ita_{label}_degrees"] = ita
        fields[f"skin_tone_{label}"] = None if ita is None else ita_category(ita)
    return fields


def _color(pixels: np.ndarray, strategy: str) -> np.ndarray | None:
    return summarize_rgb(pixels, strategy) if len(pixels) else None
