"""Find every face in the frame, large or small: the whole frame first, then overlapping tiles.

The face detector sees its input at 128 x 128 pixels, so on a whole frame it loses faces narrower
than about a tenth of the frame (a group photo, a half-body shot, people a few metres away).
When the whole frame shows no face, or only small ones, the same detector looks again at
overlapping tiles of TILE_SIDE pixels, where a 48 px face fills 15 % of its input. Tiles overlap
by more than the largest face the whole-frame pass can miss, so every such face lies whole inside
at least one tile; detections cut by a tile's inner edge are dropped, each face first seen in a
tile is looked at again in a view centred on it, and the same face seen by several passes is
merged (non-maximum suppression).

Tiles find faces down to TILE_FINDS pixels of the image they cut, which is the upload shrunk to
the analysis size. When that shrank it by more than TILE_FINDS / SMALLEST_FACE (an upload over
1280 px), a face SMALLEST_FACE wide in the upload is too small for them: when the search of the
analysed image finds no face or only small ones, it is repeated on tiles of the upload decoded
again at DETAIL_SCALE, where that face is TILE_FINDS wide again.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from .align import crop_around, translation
from .errors import PublicError
from .landmarks import Detection, FaceFinder

TILE_SIDE = 320
TILE_OVERLAP = 160
# Tiles are searched when the main face found on the whole frame (landmarked, so its width is
# exact) is narrower than this share of the frame's longer side, or when there is none: faces
# below ~12 % are lost on the whole frame. A half-body portrait's face is ~17 %.
TILE_BELOW = 0.15
# A tile shows the detector more, smaller patterns than the whole frame does. In 24 made-up group
# photos (plain, fur and coffee backgrounds) faces in tiles scored 0.84 or more, fur and coffee
# froth at most 0.66; the lower half of a face cut by a tile's edge reached 0.81, which the second
# look (with_tiles) then rejects.
MIN_TILE_SCORE = 0.7
SMALLEST_FACE = 60  # px of the upload: the narrowest face the search is meant to find
TILE_FINDS = 48  # px: the narrowest face tiles find
DETAIL_SCALE = TILE_FINDS / SMALLEST_FACE  # pixels per uploaded pixel of the finer search
# The finer search runs when the main face found at the analysis size is narrower than this share
# of its longer side (~92 px of 1024, twice TILE_FINDS), or there is none: a scene of small faces,
# where smaller ones may have gone unseen. The whole frame finds faces above ~10-12 %, so a face
# it shows never costs the finer search (~2 ms for each of ~270 tiles in a 4000 x 3000 upload).
DETAIL_BELOW = 0.09
# The most tiles one search may cut. The finer copy of the worst upload image_io admits (at most
# MAX_INPUT_PIXELS, sides up to MAX_SIDE) needs 2236 (~4.5 s at ~2 ms a tile; a 2601 x 34401 upload);
# more is refused with a clear error rather than run past the request's timeout, should those limits
# ever be raised (a 20,000,000 x 4 upload, before MAX_SIDE, needed ~100,000: 117 s an attempt).
MAX_TILES = 2500
EDGE_MARGIN = 2  # px: a box this close to a tile's inner edge is a face cut by it
SAME_FACE_IOU = 0.3
SAME_FACE_NESTED = 0.6  # share of the smaller box inside the larger one
SECOND_LOOK_IOU = 0.5
_PAD_FRACTION = 0.5


def _as_is(rgb: np.ndarray) -> np.ndarray:
    return rgb


def _contrast_stretched(rgb: np.ndarray) -> np.ndarray:
    """Equalise luminance locally: the detector misses faces in dark or washed-out photos."""
    ycrcb = cv2.cvtColor(rgb, cv2.COLOR_RGB2YCrCb)
    ycrcb[..., 0] = cv2.createCLAHE(clipLimit=3.0, tileGridSize=(8, 8)).apply(ycrcb[..., 0])
    return cv2.cvtColor(ycrcb, cv2.COLOR_YCrCb2RGB)


@dataclass(frozen=True)
class Attempt:
    """One way of looking for faces; each later attempt rescues photos the earlier ones miss."""

    name: str
    prepare: Callable[[np.ndarray], np.ndarray]  # the pixels the detector and landmarker see
    pad_fraction: float  # blank border around the whole frame: faces that fill or overflow it
    tiled: bool  # look for small faces in tiles (pointless on a padded frame: it only adds border)


ATTEMPTS: tuple[Attempt, ...] = (
    Attempt("as-is", _as_is, 0.0, True),
    Attempt("padded", _as_is, _PAD_FRACTION, False),
    Attempt("contrast-boosted", _contrast_stretched, 0.0, True),
)


def whole_frame(finder: FaceFinder, rgb: np.ndarray, attempt: Attempt) -> list[Detection]:
    """The faces the detector sees on the whole of `rgb` (prepared by `attempt`), largest first."""
    pad = int(max(rgb.shape[:2]) * attempt.pad_fraction)
    if not pad:
        return _largest_first(finder.detect(rgb))
    padded = cv2.copyMakeBorder(rgb, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=(0, 0, 0))
    return _largest_first([face.mapped(translation((-pad, -pad))) for face in finder.detect(padded)])


def needs_tiles(attempt: Attempt, rgb: np.ndarray, main_face_width: float | None) -> bool:
    """Whether to look in tiles: no face was confirmed on the whole frame, or the main one is so
    small that smaller faces than it may have gone unseen."""
    longest = max(rgb.shape[:2])
    small = main_face_width is None or main_face_width < TILE_BELOW * longest
    return attempt.tiled and longest > TILE_SIDE and small


def needs_detail(attempt: Attempt, scale: float, longest: int, main_face_width: float | None) -> bool:
    """Whether to search again at DETAIL_SCALE: the analysed image (`scale` pixels per uploaded
    pixel, `longest` on its longer side) lost faces SMALLEST_FACE wide, and no face was confirmed
    in it or the main one is small."""
    small = main_face_width is None or main_face_width < DETAIL_BELOW * longest
    return attempt.tiled and scale < DETAIL_SCALE and small


def with_tiles(finder: FaceFinder, rgb: np.ndarray, found: list[Detection]) -> list[Detection]:
    """`found` and the faces found in tiles of `rgb`, each face once, largest first.

    Boxes that show the same face are merged, keeping the best scored (greedy non-maximum
    suppression). Each face first seen in a tile gets a second look, in a view centred on it
    (align.crop_around): a tile can show the detector the lower half of a face cut by its edge,
    or a face-like texture, which it then no longer sees as the same face.
    """
    from_tiles = _in_tiles(finder, rgb)
    tiled = {id(face) for face in from_tiles}
    candidates = sorted(found + from_tiles, key=lambda face: face.score, reverse=True)
    # Each candidate is compared with all kept (and rejected) boxes at once: one pair at a time, a
    # scene of 770 small faces spent 10 of its 14 s of CPU comparing boxes (BENCHMARKS.md).
    kept, rejected = _Boxes(len(candidates)), _Boxes(len(candidates))
    faces: list[Detection] = []
    for face in candidates:
        if kept.same_face(face).any() or rejected.same_box(face).any():
            continue
        if id(face) in tiled:
            confirmed = _second_look(finder, rgb, face)
            if confirmed is None:
                rejected.add(face)
                continue
            face = confirmed
        if not kept.same_face(face).any():
            kept.add(face)
            faces.append(face)
    return _largest_first(faces)


class _Boxes:
    """Up to `capacity` detections' boxes in one array, to compare a box with all of them at once,
    by the rules of same_face and same_box."""

    def __init__(self, capacity: int) -> None:
        self._boxes = np.empty((capacity, 4))
        self._count = 0

    def add(self, face: Detection) -> None:
        self._boxes[self._count] = face.box
        self._count += 1

    def same_face(self, face: Detection) -> np.ndarray:
        """Whether `face` shows the same face as each box (see same_face)."""
        return _same_faces(face, self._boxes[: self._count])

    def same_box(self, face: Detection) -> np.ndarray:
        """Whether `face` is the same box as each box (see same_box)."""
        return _ious(face, self._boxes[: self._count]) > SAME_FACE_IOU


def _second_look(finder: FaceFinder, rgb: np.ndarray, face: Detection) -> Detection | None:
    """The detector's box for `face` in a view centred on it, if that box matches `face`'s."""
    crop = crop_around(face.center, face.side)
    back = cv2.invertAffineTransform(crop.matrix)
    seen = [other.mapped(back) for other in finder.detect(crop.apply(rgb))]
    best = max(seen, key=lambda other: iou(face, other), default=None)
    return best if best is not None and iou(face, best) >= SECOND_LOOK_IOU else None


def same_face(a: Detection, b: Detection) -> bool:
    """Whether two boxes show the same face: they overlap much, or one lies mostly inside the
    other (a face cut by a tile's edge, or seen twice at different scales)."""
    return bool(_same_faces(a, b.box[np.newaxis])[0])


def same_box(a: Detection, b: Detection) -> bool:
    """Whether two detections are one face seen twice, as boxes from different passes are; unlike
    same_face, a box well inside a much larger one (a face inside a false alarm's box) is not."""
    return iou(a, b) > SAME_FACE_IOU


def iou(a: Detection, b: Detection) -> float:
    """Intersection over union of two boxes."""
    return float(_ious(a, b.box[np.newaxis])[0])


def _same_faces(face: Detection, boxes: np.ndarray) -> np.ndarray:
    overlap, areas = _intersections(face, boxes), _areas(boxes)
    nested = overlap > SAME_FACE_NESTED * np.minimum(face.area, areas)
    return (overlap / (face.area + areas - overlap) > SAME_FACE_IOU) | nested


def _ious(face: Detection, boxes: np.ndarray) -> np.ndarray:
    overlap = _intersections(face, boxes)
    return overlap / (face.area + _areas(boxes) - overlap)


def _intersections(face: Detection, boxes: np.ndarray) -> np.ndarray:
    """The area `face`'s box shares with each of `boxes` (N x 4)."""
    low = np.maximum(face.box[:2], boxes[:, :2])
    high = np.minimum(face.box[2:], boxes[:, 2:])
    return np.prod(np.clip(high - low, 0, None), axis=1)


def _areas(boxes: np.ndarray) -> np.ndarray:
    return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])


def _largest_first(faces: list[Detection]) -> list[Detection]:
    return sorted(faces, key=lambda face: face.area, reverse=True)


def tile_origins(length: int) -> list[int]:
    """Start of each tile along a side of `length` px: evenly spread, overlapping by at least
    TILE_OVERLAP, the first at 0 and the last flush with the far edge."""
    if length <= TILE_SIDE:
        return [0]
    count = math.ceil((length - TILE_SIDE) / (TILE_SIDE - TILE_OVERLAP)) + 1
    return [round(i * (length - TILE_SIDE) / (count - 1)) for i in range(count)]


def _in_tiles(finder: FaceFinder, rgb: np.ndarray) -> list[Detection]:
    height, width = rgb.shape[:2]
    rows, columns = tile_origins(height), tile_origins(width)
    if len(rows) * len(columns) > MAX_TILES:
        raise PublicError(
            f"The image is too large to search for small faces: {len(rows) * len(columns):,} tiles of "
            f"{TILE_SIDE} px, above the {MAX_TILES:,} a search may take."
        )
    found = []
    for y in rows:
        for x in columns:
            tile = rgb[y : y + TILE_SIDE, x : x + TILE_SIDE]
            inner = np.array([
                EDGE_MARGIN if x > 0 else -math.inf,
                EDGE_MARGIN if y > 0 else -math.inf,
                tile.shape[1] - EDGE_MARGIN if x + tile.shape[1] < width else math.inf,
                tile.shape[0] - EDGE_MARGIN if y + tile.shape[0] < height else math.inf,
            ])
            found += [
                face.mapped(translation((x, y)))
                for face in finder.detect(tile)
                if face.score >= MIN_TILE_SCORE
                and face.box[0] >= inner[0] and face.box[1] >= inner[1]
                and face.box[2] <= inner[2] and face.box[3] <= inner[3]
            ]
    return found
