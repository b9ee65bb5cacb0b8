"""FaceProfileModel: the picklable object shipped as model1.pkl.

The pickle carries the Face Landmarker weights themselves (not a path), so the deployment needs
only mediapipe at run time. The weights are checked against a pinned SHA-256 whenever a model is
built or unpickled, and the live MediaPipe landmarker is never pickled: it is recreated from the
verified bytes.
"""

from __future__ import annotations

import hashlib
from typing import Any

from .color import SAMPLING_STRATEGIES
from .detection import ATTEMPTS
from .errors import PublicError
from .image_io import ImageSource, load_image
from .landmarks import FaceFinder, LandmarkDetector
from .pipeline import profile_image
from .profile import FaceProfile

MODEL_NAME = "face-profile"
MODEL_VERSION = "1.5.0"
WEIGHTS_SHA256 = "64184e229b263107bc2b804c6625db1341ff2bb731874b0bcc2fe6544e0bc9ff"


class FaceProfileModel:
    """Profiles the main face of a portrait: region colours and shares, skin tone, geometry,
    head pose and quality signals (see profile.PROFILE_FIELDS)."""

    def __init__(self, weights: bytes) -> None:
        digest = hashlib.sha256(weights).hexdigest()
        if digest != WEIGHTS_SHA256:
            raise ValueError(
                f"Face Landmarker weights have SHA-256 {digest}, expected {WEIGHTS_SHA256}"
            )
        self._weights = bytes(weights)
        self._landmarker = LandmarkDetector(self._weights)
        self._finder = FaceFinder(self._weights)

    def close(self) -> None:
        """Release MediaPipe's native graphs now rather than at exit; the model cannot predict after."""
        self._landmarker.close()
        self._finder.close()

    @property
    def model_id(self) -> str:
        """Model version and weights hash: identifies exactly what produced a profile."""
        return f"{MODEL_NAME}-{MODEL_VERSION}+sha256:{WEIGHTS_SHA256}"

    def predict(
        self,
        image: ImageSource,
        sampling_strategy: str = "use_all",
        align_face: bool = True,
        num_attempts: int = 1,
    ) -> FaceProfile:
        """Profile the largest face in `image` (a file path or PIL image), and list every face.

        `num_attempts` bounds the ways of looking for faces (detection.ATTEMPTS: as-is, padded,
        contrast-boosted), each tried only if the ones before found none; small faces are looked
        for in tiles within an attempt, so one attempt finds the faces of a group photo.

        Raises PublicError for unusable input: an unreadable or oversized image, or invalid
        options. Finding no face is not an error: the profile says face_found=False.
        """
        if sampling_strategy not in SAMPLING_STRATEGIES:
            raise PublicError(
                f"sampling_strategy must be one of {', '.join(SAMPLING_STRATEGIES)}; "
                f"got {sampling_strategy!r}."
            )
        if not isinstance(align_face, bool):
            raise PublicError(f"align_face must be true or false; got {align_face!r}.")
        if isinstance(num_attempts, bool) or not isinstance(num_attempts, int) or num_attempts < 1:
            raise PublicError(
                f"num_attempts must be a whole number from 1 (up to {len(ATTEMPTS)} are used); "
                f"got {num_attempts!r}."
            )
        return profile_image(
            self._landmarker,
            self._finder,
            load_image(image),
            sampling_strategy=sampling_strategy,
            align_face=align_face,
            num_attempts=num_attempts,
            model_id=self.model_id,
        )

    def __getstate__(self) -> dict[str, Any]:
        return {"model_version": MODEL_VERSION, "weights": self._weights}

    def __setstate__(self, state: dict[str, Any]) -> None:
        if state["model_version"] != MODEL_VERSION:
            raise ValueError(
                f"this pickle holds face-profile {state['model_version']} but the library is "
                f"{MODEL_VERSION}; rebuild it with `python scripts/build_model.py`"
            )
        self.__init__(state["weights"])
