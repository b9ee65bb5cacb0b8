"""What a prediction returns: every profile field with its UbiOps data type, in one place.

The deployment's output spec is checked against PROFILE_FIELDS by the tests, so the code and the
spec cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from PIL import Image

from .regions import FACE, REGIONS

PROFILE_FIELDS: dict[str, str] = {
    "face_found": "bool",
    "num_faces": "int",
    "faces": "dict",
    "detection_attempts": "int",
    "model_id": "string",
    "image_width": "int",
    "image_height": "int",
    "face_box": "array_double",
    "face_share_of_image": "double",
    "head_area_px": "double",
    **{f"rgb_of_{region}": "array_double" for region in REGIONS},
    **{f"pct_of_head_{region}": "double" for region in REGIONS if region != FACE},
    "ita_cheeks_degrees": "double",
    "skin_tone_cheeks": "string",
    "ita_forehead_degrees": "double",
    "skin_tone_forehead": "string",
    "fwhr": "double",
    "bizygomatic_width_px": "double",
    "upper_face_height_px": "double",
    "yaw_degrees": "double",
    "pitch_degrees": "double",
    "roll_degrees": "double",
    "eye_roll_degrees": "double",
    "img_rot_degrees": "double",
    "eye_slope_degrees": "double",
    "sharpness": "double",
    "brightness": "double",
    "eyes_open_score": "double",
    "smile_score": "double",
}


@dataclass(frozen=True)
class FaceProfile:
    """The measurements (exactly the keys of PROFILE_FIELDS) and the annotated portrait, if any."""

    fields: dict[str, Any]
    annotated_image: Image.Image | None


def profile_fields(**values: Any) -> dict[str, Any]:
    """A complete field dict: the given values, null for every measurement not given."""
    unknown = set(values) - set(PROFILE_FIELDS)
    if unknown:
        raise KeyError(f"not profile fields: {sorted(unknown)}")
    return {name: values.get(name) for name in PROFILE_FIELDS}
