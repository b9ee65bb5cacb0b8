"""Face profile model: region colours, skin tone, facial geometry and pose from one portrait."""

from .errors import PublicError
from .model import MODEL_VERSION, WEIGHTS_SHA256, FaceProfileModel
from .profile import PROFILE_FIELDS, FaceProfile

__all__ = [
    "MODEL_VERSION",
    "PROFILE_FIELDS",
    "WEIGHTS_SHA256",
    "FaceProfile",
    "FaceProfileModel",
    "PublicError",
]
