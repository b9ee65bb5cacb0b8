"""Turn an image into a face profile: find the faces, landmark the main one in a view centred on
it, optionally level its eyes, then measure.

The main face is the largest one found (by detector box area) that the landmarker confirms. It is
landmarked and measured in its own view (align.crop_around), so small faces are enlarged to a size
the landmarker handles well, and a face's pose does not depend on where it sits in the frame.
Lengths and areas are reported in pixels of the uploaded image (undoing the view's scale and any
downscaling of the upload), so they depend on neither. A face found only by the finer search of a
large upload (detection.needs_detail) is landmarked and measured in the finer copy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from .align import Crop, crop_around, rotate_image, then, transform_points
from .annotate import annotate
from .color import has_hue, ita_category, ita_degrees, summarize_rgb
from .detection import (
    ATTEMPTS,
    DETAIL_SCALE,
    Attempt,
    needs_detail,
    needs_tiles,
    same_box,
    whole_frame,
    with_tiles,
)
from .geometry import eye_roll_degrees, fwhr, head_pose
from .image_io import LoadedImage
from .landmarks import Detection, Face, FaceFinder, LandmarkDetector, nearest_face
from .profile import FaceProfile, profile_fields
from .quality import brightness, eyes_open_score, face_box, sharpness, smile_score
from .regions import FACE, REGION_OUTLINES, RegionMasks, region_masks, region_polygons

# Faces the landmarker rejects (a detector false alarm, usually) are skipped, largest first; past
# this many the attempt gives up, so a texture full of false alarms stays cheap.
MAX_CANDIDATES = 3
# align_face landmarks the levelled face again only when it was tilted by more than this: up to
# ~15 degrees, landmarks carried through the rotation agree with the upright portrait as well as
# fresh ones (fWHR within 4 %, region colours within a few levels, both test portraits), while
# past ~20 degrees fresh ones measure the forehead markedly better. The second landmarker pass is
# ~13 ms of the ~31 ms CPU of a 512 px portrait (BENCHMARKS.md, 1.2.0; the machines since run faster).
RELANDMARK_ABOVE_DEGREES = 10.0
# An upside-down face looks to the face detector like an upright one, keypoints and all (eyes where
# the mouth is), and the landmarker then fits an upright mesh to it: a confident, wrong profile. The
# detector does score a face higher the right way up, so each candidate's view is shown to it as is
# and turned half round (180 degrees), and the face is landmarked in the turned view (landmarks and
# pose turned back) when that scores more than this much higher. Both test portraits rotated in 5
# degree steps (three resamplings): tilted by 120-180 degrees, they scored 0.10-0.93 higher turned
# (where the detector saw them both ways); within 90 degrees of upright at most 0.055 higher, so
# those keep the view as it is. The two detector passes cost ~1 ms each.
UPSIDE_DOWN_MARGIN = 0.08
# A region (or the cheeks, or the forehead) whose pixels lie mostly beyond the image's edge (a face
# cut by the frame) has no colour or skin tone: what little of it shows may be hair or shadow.
MIN_SHARE_IN_FRAME = 0.5


@dataclass(frozen=True)
class _View:
    """The main face landmarked in its view: the prepared pixels the landmarker saw and the
    image's own pixels (which are measured), both through the same crop."""

    face: Face
    crop: Crop
    seen: np.ndarray
    pixels: np.ndarray

    @property
    def face_width(self) -> float:
        """Width of the face's landmarks in image pixels."""
        return float(np.ptp(self.face.points[:, 0])) / self.crop.scale


@dataclass(frozen=True)
class _Found:
    """The faces found (largest first, the main one first) and the main face's view, both in the
    pixels of `frame`: the analysed image, or its finer copy if the faces were found there."""

    frame: LoadedImage
    faces: list[Detection]
    view: _View


def profile_image(
    landmarker: LandmarkDetector,
    finder: FaceFinder,
    image: LoadedImage,
    *,
    sampling_strategy: str,
    align_face: bool,
    num_attempts: int,
    model_id: str,
) -> FaceProfile:
    """Profile the main face in `image`; with no face, every measurement is null."""
    attempts, found = _find_main_face(landmarker, finder, image, num_attempts)
    faces = [] if found is None else found.faces
    known = {
        "face_found": found is not None,
        "num_faces": len(faces),
        "faces": _faces_field(faces, image if found is None else found.frame),
        "detection_attempts": attempts,
        "model_id": model_id,
        "image_width": image.original_size[0],
        "image_height": image.original_size[1],
    }
    if found is None:
        return FaceProfile(fields=profile_fields(**known), annotated_image=None)

    frame, view = found.frame, found.view
    to_original = 1.0 / frame.scale
    face, to_image = view.face, cv2.invertAffineTransform(view.crop.matrix)
    eye_roll = eye_roll_degrees(face.points)
    rotation = -eye_roll if align_face else 0.0
    if align_face:
        rgb, measured, leveling = _leveled(landmarker, view, rotation)
    else:
        rgb, measured, leveling = view.pixels, face, _IDENTITY
    measured_to_image = then(cv2.invertAffineTransform(leveling), to_image)
    masks = region_masks(measured.points, rgb, measured_to_image, frame.rgb.shape, view.crop.reach)
    pose = head_pose(face.transform)
    ratio = fwhr(measured.points)
    box = face_box(transform_points(face.points, to_image), frame.rgb.shape)
    view_to_original = to_original / view.crop.scale
    head_area_px = masks.area(FACE) * view_to_original**2
    # Of the face only what lies inside the image (a tight headshot's oval reaches past its edges,
    # and its share was 1.06-1.79), at most 1: whole pixels at the edge may add a hair.
    face_in_image_px = masks.area_in_image(FACE) * view_to_original**2

    fields = profile_fields(
        **known,
        **_region_fields(masks, sampling_strategy),
        face_box=[float(v) for v in box * to_original],
        face_share_of_image=min(face_in_image_px / (image.original_size[0] * image.original_size[1]), 1.0),
        head_area_px=head_area_px,
        fwhr=ratio.ratio,
        bizygomatic_width_px=ratio.bizygomatic_width * view_to_original,
        upper_face_height_px=ratio.upper_face_height * view_to_original,
        yaw_degrees=pose.yaw,
        pitch_degrees=pose.pitch,
        roll_degrees=pose.roll,
        eye_roll_degrees=eye_roll,
        img_rot_degrees=rotation,
        eye_slope_degrees=eye_roll_degrees(measured.points),
        sharpness=sharpness(frame.rgb, box),
        brightness=_brightness(masks),
        eyes_open_score=eyes_open_score(face.blendshapes),
        smile_score=smile_score(face.blendshapes),
    )
    to_analysed = image.scale / frame.scale
    outline = transform_points(measured.points, measured_to_image) * to_analysed
    others = [face.box[[0, 1, 2, 1, 2, 3, 0, 3]].reshape(4, 2) * to_analysed for face in faces[1:]]
    annotated = annotate(image.rgb, region_polygons(outline), outline, others)
    return FaceProfile(fields=fields, annotated_image=annotated)


_IDENTITY = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])


def _find_main_face(
    landmarker: LandmarkDetector, finder: FaceFinder, image: LoadedImage, num_attempts: int
) -> tuple[int, _Found | None]:
    """Attempts used and what the first successful one found. An attempt succeeds when the
    landmarker confirms one of its largest faces; it looks in tiles too when the whole frame has
    no confirmed face or only a small one, and in tiles of a finer copy of a large upload when
    those found none or only small ones."""
    tried = min(num_attempts, len(ATTEMPTS))
    for number, attempt in enumerate(ATTEMPTS[:tried], start=1):
        seen = attempt.prepare(image.rgb)
        confirming = _Confirming(landmarker, finder, seen, image.rgb)
        faces = whole_frame(finder, seen, attempt)
        main = confirming.main(faces)
        if needs_tiles(attempt, seen, _width(main)):
            faces = with_tiles(finder, seen, confirming.not_rejected(faces))
            main = confirming.main(faces)
        found = None
        if needs_detail(attempt, image.scale, max(seen.shape[:2]), _width(main)):
            found = _in_detail(landmarker, finder, image, attempt, confirming.not_rejected(faces))
        if found is None and main is not None:
            found = _Found(image, *main)
        if found is not None:
            return number, found
    return tried, None


def _width(main: tuple[list[Detection], _View] | None) -> float | None:
    return None if main is None else main[1].face_width


def _in_detail(
    landmarker: LandmarkDetector, finder: FaceFinder, image: LoadedImage, attempt: Attempt,
    faces: list[Detection],
) -> _Found | None:
    """The search in tiles of the upload decoded again at DETAIL_SCALE, merged with `faces`
    (found in `image`, not rejected by the landmarker); the main face is landmarked there."""
    detail = image.finer(DETAIL_SCALE)
    seen = attempt.prepare(detail.rgb)
    to_detail = detail.scale / image.scale
    carried = [face.mapped(np.array([[to_detail, 0.0, 0.0], [0.0, to_detail, 0.0]])) for face in faces]
    main = _Confirming(landmarker, finder, seen, detail.rgb).main(with_tiles(finder, seen, carried))
    return None if main is None else _Found(detail, *main)


class _Confirming:
    """Landmarks candidate faces of one prepared image, each face once however often it is asked."""

    def __init__(self, landmarker: LandmarkDetector, finder: FaceFinder, seen: np.ndarray, rgb: np.ndarray) -> None:
        self._landmarker, self._finder, self._seen, self._rgb = landmarker, finder, seen, rgb
        self._tried: list[tuple[Detection, _View | None]] = []

    def main(self, faces: list[Detection]) -> tuple[list[Detection], _View] | None:
        """The largest of `faces` the landmarker confirms (with the smaller faces), or None."""
        for index, detection in enumerate(faces[:MAX_CANDIDATES]):
            view = self._view(detection)
            if view is not None:
                return faces[index:], view
        return None

    def not_rejected(self, faces: list[Detection]) -> list[Detection]:
        """`faces` without those the landmarker has rejected."""
        rejected = [tried for tried, view in self._tried if view is None]
        return [face for face in faces if not any(same_box(face, other) for other in rejected)]

    def _view(self, detection: Detection) -> _View | None:
        for tried, view in self._tried:
            if same_box(tried, detection):
                return view
        view = _landmarked(self._landmarker, self._finder, self._seen, self._rgb, detection)
        self._tried.append((detection, view))
        return view


def _landmarked(
    landmarker: LandmarkDetector, finder: FaceFinder, seen: np.ndarray, rgb: np.ndarray, detection: Detection
) -> _View | None:
    """The face of `detection` landmarked in its view (turned half round first if it is upside
    down), or None if the landmarker finds no face whose centre lies in the detection's box."""
    crop = crop_around(detection.center, detection.side)
    seen_view = crop.apply(seen)
    box = transform_points(detection.box.reshape(2, 2), crop.matrix)
    inside = [
        face for face in _upright_landmarked(landmarker, finder, seen_view)
        if np.all(face.center >= box[0]) and np.all(face.center <= box[1])
    ]
    if not inside:
        return None
    face = nearest_face(inside, box.mean(axis=0))
    return _View(face=face, crop=crop, seen=seen_view, pixels=seen_view if seen is rgb else crop.apply(rgb))


def _upright_landmarked(landmarker: LandmarkDetector, finder: FaceFinder, view: np.ndarray) -> list[Face]:
    """The faces in a view centred on one face, landmarked as it is or, when the detector scores
    that face UPSIDE_DOWN_MARGIN higher turned half round, in the turned view (then turned back)."""
    turned = np.ascontiguousarray(view[::-1, ::-1])
    if _center_score(finder, turned) <= _center_score(finder, view) + UPSIDE_DOWN_MARGIN:
        return landmarker.detect(view)
    height, width = view.shape[:2]
    return [face.turned_half(width, height) for face in landmarker.detect(turned)]


def _center_score(finder: FaceFinder, view: np.ndarray) -> float:
    """The detector's best score for a face whose box holds the view's centre (0 if none)."""
    center = np.array([view.shape[1], view.shape[0]]) / 2
    return max(
        (face.score for face in finder.detect(view) if np.all(face.box[:2] <= center) and np.all(face.box[2:] >= center)),
        default=0.0,
    )


def _leveled(
    landmarker: LandmarkDetector, view: _View, degrees: float
) -> tuple[np.ndarray, Face, np.ndarray]:
    """The view's pixels rotated to level the eyes, the face re-landmarked there when it was tilted
    by more than RELANDMARK_ABOVE_DEGREES (otherwise, or if that fails, the landmarks are carried
    over by the same rotation) and the rotation's matrix."""
    rotated_seen, matrix = rotate_image(view.seen, degrees)
    rotated = rotated_seen if view.pixels is view.seen else rotate_image(view.pixels, degrees)[0]
    carried = view.face.moved(transform_points(view.face.points, matrix))
    found = landmarker.detect(rotated_seen) if abs(degrees) > RELANDMARK_ABOVE_DEGREES else []
    return rotated, (nearest_face(found, carried.center) if found else carried), matrix


def _faces_field(faces: list[Detection], image: LoadedImage) -> dict[str, list]:
    """Every face's detector box (clipped to the image, in the uploaded image's pixels) and score."""
    return {
        "boxes": [
            [float(v) for v in face_box(face.box.reshape(2, 2), image.rgb.shape) / image.scale]
            for face in faces
        ],
        "scores": [face.score for face in faces],
    }


def _region_fields(masks: RegionMasks, strategy: str) -> dict[str, Any]:
    """Colour and head-area share of every region, plus ITA° skin tone of cheeks and forehead."""
    head_area = masks.area(FACE)
    fields: dict[str, Any] = {}
    for name in masks.masks:
        color = _color(masks, (name,), strategy)
        fields[f"rgb_of_{name}"] = None if color is None else [float(v) for v in color]
        if name in REGION_OUTLINES:
            fields[f"pct_of_head_{name}"] = 100.0 * masks.area(name) / head_area
    for label, regions in (("cheeks", ("left_cheek", "right_cheek")), ("forehead", ("forehead",))):
        color = _color(masks, regions, strategy)
        ita = ita_degrees(color) if color is not None and has_hue(color) else None  # none for grey
        fields[f"ita_{label}_degrees"] = ita
        fields[f"skin_tone_{label}"] = None if ita is None else ita_category(ita)
    return fields


def _color(masks: RegionMasks, regions: tuple[str, ...], strategy: str) -> np.ndarray | None:
    """The colour of the image's pixels in those of `regions` that lie mostly inside it."""
    shown = [name for name in regions if masks.share_in_frame(name) >= MIN_SHARE_IN_FRAME]
    pixels = masks.pixels(*shown) if shown else []
    return summarize_rgb(pixels, strategy) if len(pixels) else None


def _brightness(masks: RegionMasks) -> float | None:
    pixels = masks.pixels(FACE)
    return brightness(pixels) if len(pixels) else None
