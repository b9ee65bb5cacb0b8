"""Faces that fill a small part of the frame: group photos built from the committed portraits,
pasted 60-150 px wide onto a plain and a busy background, 1280 px wide (searched in tiles of the
analysed image) and 4000 px wide (searched again in tiles of a finer copy). Every face is found
once, the largest is profiled, and it measures as the same face does alone."""

from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np
import pytest
from face_profile import detection
from face_profile.annotate import OTHER_FACE_COLOR
from face_profile.detection import ATTEMPTS, DETAIL_SCALE, SAME_FACE_IOU, SAME_FACE_NESTED, TILE_SIDE, tile_origins, whole_frame
from face_profile.image_io import MAX_ANALYSIS_SIDE, load_image
from PIL import Image
from profile_helpers import NON_FACES, PORTRAITS, open_rgb

CANVAS = (1280, 886)  # the group photo; analysed at 1024 x 709
GRACE, ASTRONAUT = "grace_hopper.jpg", "astronaut.jpg"
# (portrait, face width in px, face centre): no two heads overlap; most faces straddle a tile's edge.
LAYOUTS = {
    "four": [
        (GRACE, 150, (260, 270)), (ASTRONAUT, 110, (660, 610)), (GRACE, 80, (1040, 230)),
        (ASTRONAUT, 60, (330, 700)),
    ],
    "five": [
        (ASTRONAUT, 140, (980, 560)), (GRACE, 100, (330, 260)), (ASTRONAUT, 75, (690, 200)),
        (GRACE, 60, (160, 700)), (ASTRONAUT, 90, (560, 690)),
    ],
}
LARGE_CANVAS = (4000, 3000)  # a 12 Mpx camera's photo; analysed at 1024 x 768, where 150 px is 38
LARGE_LAYOUT = [
    (GRACE, 150, (700, 800)), (ASTRONAUT, 110, (2000, 1500)), (GRACE, 80, (3300, 700)),
    (ASTRONAUT, 60, (1000, 2400)), (ASTRONAUT, 100, (3200, 2500)),
]
# How far the largest face's profile may stray from the same portrait profiled alone (its face is
# 185 and 90 px wide there). Over 60 random layouts of faces 60-150 px wide the largest errors
# were 4.8 % fWHR, 1.2° yaw, 2.9° pitch, 0.6° roll and 2.5 / 7.7 levels of cheek / forehead
# colour: the landmarker moves landmarks by ~1 % when its input shifts by a pixel, and region
# colours follow the outlines (most where the forehead meets the hair). A main face only ~60 px
# wide reads fWHR up to 8 % high.
TOLERANCE = {
    "fwhr": 0.06,  # relative
    "yaw_degrees": 2.0,
    "pitch_degrees": 4.0,
    "roll_degrees": 1.5,
    "rgb_of_face": 3.0,  # per channel, 0-255
    "rgb_of_left_cheek": 4.0,
    "rgb_of_forehead": 10.0,
}


@dataclass(frozen=True)
class Pasted:
    """Where a portrait's face landed in a group photo."""

    name: str
    box: np.ndarray  # the face's [x_min, y_min, x_max, y_max] in the group photo's pixels

    def contains(self, point: np.ndarray) -> bool:
        return bool(np.all(point >= self.box[:2]) and np.all(point <= self.box[2:]))


def background(kind: str, size: tuple[int, int]) -> Image.Image:
    if kind == "plain":
        return Image.new("RGB", size, (150, 140, 130))
    return open_rgb("chelsea.jpg").resize(size, Image.Resampling.BICUBIC)  # fur: a busy natural photo


def group_photo(
    profiles: dict, kind: str, layout: list[tuple], size: tuple[int, int] = CANVAS
) -> tuple[Image.Image, list[Pasted]]:
    """Head-and-shoulders crops of the portraits, scaled so each face is as wide as asked and
    pasted with its face centred where asked, on a background of `size`."""
    photo = background(kind, size)
    pasted = []
    for name, width, center in layout:
        x0, y0, x1, y1 = profiles[name]["face_box"]
        face_width, face_height = x1 - x0, y1 - y0
        portrait = open_rgb(name)
        crop = np.round([
            max(x0 - 0.5 * face_width, 0), max(y0 - 0.6 * face_height, 0),
            min(x1 + 0.5 * face_width, portrait.width), min(y1 + 0.4 * face_height, portrait.height),
        ]).astype(int)
        scale = width / face_width
        head = portrait.crop(tuple(crop)).resize(
            (round((crop[2] - crop[0]) * scale), round((crop[3] - crop[1]) * scale)), Image.Resampling.LANCZOS
        )
        face = (np.array([x0, y0, x1, y1]) - np.tile(crop[:2], 2)) * scale
        offset = np.round(np.array(center) - (face[:2] + face[2:]) / 2).astype(int)
        photo.paste(head, tuple(offset))
        pasted.append(Pasted(name=name, box=face + np.tile(offset, 2)))
    return photo, pasted


def centers(boxes: list[list[float]]) -> list[np.ndarray]:
    return [(np.array(box[:2]) + np.array(box[2:])) / 2 for box in boxes]


def assert_each_face_found_once(fields: dict, pasted: list[Pasted]) -> None:
    found = centers(fields["faces"]["boxes"])
    assert fields["num_faces"] == len(found) == len(fields["faces"]["scores"]) == len(pasted), fields["faces"]
    for face in pasted:
        assert sum(face.contains(center) for center in found) == 1, (face, fields["faces"])
    assert all(0.5 <= score <= 1 for score in fields["faces"]["scores"])


def assert_other_faces_are_outlined(profile, photo: Image.Image) -> None:
    """The annotated image (at analysis size) outlines every face besides the profiled one."""
    annotated = profile.annotated_image
    scale = annotated.width / photo.width
    assert annotated.height == round(photo.height * scale)
    for x0, y0, x1, _ in profile.fields["faces"]["boxes"][1:]:
        assert annotated.getpixel((round((x0 + x1) / 2 * scale), round(y0 * scale))) == OTHER_FACE_COLOR


def assert_measures_like_alone(fields: dict, alone: dict) -> None:
    assert fields["fwhr"] == pytest.approx(alone["fwhr"], rel=TOLERANCE["fwhr"])
    for name in ("yaw_degrees", "pitch_degrees", "roll_degrees"):
        assert fields[name] == pytest.approx(alone[name], abs=TOLERANCE[name]), name
    for name in ("rgb_of_face", "rgb_of_left_cheek", "rgb_of_forehead"):
        assert fields[name] == pytest.approx(alone[name], abs=TOLERANCE[name]), name


@pytest.mark.parametrize("kind", ["plain", "busy"])
@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_every_small_face_is_found_once_and_the_largest_is_profiled(model, profiles, kind, layout):
    assert_found_and_profiled(model, profiles, *group_photo(profiles, kind, LAYOUTS[layout]))


@pytest.mark.parametrize("kind", ["plain", "busy"])
def test_small_faces_in_a_large_upload_are_found_once_and_the_largest_is_profiled(model, profiles, kind):
    """Faces 60-150 px wide in a 4000 px photo, 15-38 px once analysed at 1024 px: found in the
    finer copy, and measured there in the upload's pixels."""
    assert_found_and_profiled(model, profiles, *group_photo(profiles, kind, LARGE_LAYOUT, LARGE_CANVAS))


def assert_found_and_profiled(model, profiles: dict, photo: Image.Image, pasted: list[Pasted]) -> None:
    profile = model.predict(photo)  # default options: one attempt
    fields = profile.fields
    assert fields["face_found"] is True and fields["detection_attempts"] == 1
    assert_each_face_found_once(fields, pasted)
    assert_other_faces_are_outlined(profile, photo)

    largest = max(pasted, key=lambda face: face.box[2] - face.box[0])
    box = np.array(fields["face_box"])
    assert largest.contains((box[:2] + box[2:]) / 2)
    assert largest.contains(centers(fields["faces"]["boxes"])[0]), "the profiled face comes first"
    alone = profiles[largest.name]
    assert_measures_like_alone(fields, alone)
    # Lengths are in the group photo's pixels, where the face is `scale` times its size alone.
    scale = (largest.box[2] - largest.box[0]) / (alone["face_box"][2] - alone["face_box"][0])
    assert fields["bizygomatic_width_px"] == pytest.approx(alone["bizygomatic_width_px"] * scale, rel=0.06)
    assert fields["head_area_px"] == pytest.approx(alone["head_area_px"] * scale**2, rel=0.1)
    assert fields["face_share_of_image"] == pytest.approx(fields["head_area_px"] / (photo.width * photo.height))


ANALYSIS_SCALE = MAX_ANALYSIS_SIDE / CANVAS[0]


def test_a_face_on_a_tile_edge_is_found_once(model, profiles):
    """Cut in half by the first tile's right edge, whole in the next tile: found once."""
    edge = TILE_SIDE / ANALYSIS_SCALE
    layout = [(ASTRONAUT, 70, (edge, 300)), (GRACE, 100, (edge + 300, 600))]
    photo, pasted = group_photo(profiles, "plain", layout)
    assert_each_face_found_once(model.predict(photo).fields, pasted)


def test_measurements_are_in_the_uploaded_pixels_at_any_size(model, profiles):
    """The same group at twice the size (downscaled to 1024 px for analysis) measures twice as long."""
    photo, pasted = group_photo(profiles, "plain", LAYOUTS["four"])
    small = model.predict(photo).fields
    large = model.predict(photo.resize((CANVAS[0] * 2, CANVAS[1] * 2), Image.Resampling.BICUBIC)).fields
    assert large["num_faces"] == small["num_faces"] == len(pasted)
    assert np.array(large["faces"]["boxes"]) == pytest.approx(np.array(small["faces"]["boxes"]) * 2, abs=12)
    assert large["face_box"] == pytest.approx([v * 2 for v in small["face_box"]], abs=8)
    assert large["bizygomatic_width_px"] == pytest.approx(small["bizygomatic_width_px"] * 2, rel=0.05)
    assert large["head_area_px"] == pytest.approx(small["head_area_px"] * 4, rel=0.08)
    assert large["face_share_of_image"] == pytest.approx(small["face_share_of_image"], rel=0.08)


class DetectorCalls:
    """Counts the face detector's passes: each whole frame, tile or second look is one."""

    def __init__(self, model, monkeypatch) -> None:
        self.count = 0
        detect = model._finder.detect

        def counted(rgb):
            self.count += 1
            return detect(rgb)

        monkeypatch.setattr(model._finder, "detect", counted)


@pytest.mark.parametrize("side", [None, 3000])
@pytest.mark.parametrize("name", PORTRAITS)
def test_a_portrait_is_found_in_one_detector_pass(model, monkeypatch, name, side):
    """No tiling when the whole frame shows a face large enough: a portrait costs what it did, at
    its own size and as a 3000 px upload (not decoded again for the finer search): the whole frame
    once, and the main face's view as it is and turned half round (is the face upside down?)."""
    portrait = open_rgb(name)
    if side is not None:
        portrait = portrait.resize((side, round(side * portrait.height / portrait.width)), Image.Resampling.BICUBIC)
    calls = DetectorCalls(model, monkeypatch)
    assert model.predict(portrait).fields["num_faces"] == 1
    assert calls.count == 1 + 2


def test_a_group_photo_is_searched_in_tiles(model, profiles, monkeypatch):
    photo, _ = group_photo(profiles, "plain", LAYOUTS["four"])
    calls = DetectorCalls(model, monkeypatch)
    model.predict(photo)
    tiles = len(tile_origins(MAX_ANALYSIS_SIDE)) * len(tile_origins(round(CANVAS[1] * ANALYSIS_SCALE)))
    assert calls.count > tiles


def tile_count(size: tuple[int, int], scale: float) -> int:
    return len(tile_origins(round(size[0] * scale))) * len(tile_origins(round(size[1] * scale)))


@pytest.mark.parametrize(("width", "finer"), [(150, True), (500, False)])
def test_a_large_upload_is_searched_finer_only_for_small_faces(model, profiles, monkeypatch, width, finer):
    """A 4000 px photo whose largest face is 150 px is searched again in tiles of its finer copy;
    one whose face is 500 px (128 px analysed, found at the analysis size) is not."""
    photo, _ = group_photo(profiles, "plain", [(GRACE, width, (2000, 1500))], LARGE_CANVAS)
    calls = DetectorCalls(model, monkeypatch)
    assert model.predict(photo).fields["num_faces"] == 1
    analysis_tiles = tile_count(LARGE_CANVAS, MAX_ANALYSIS_SIDE / LARGE_CANVAS[0])
    finer_tiles = tile_count(LARGE_CANVAS, DETAIL_SCALE)
    if finer:
        assert calls.count > analysis_tiles + finer_tiles
    else:
        assert calls.count < finer_tiles


@pytest.mark.parametrize("name", NON_FACES)
def test_large_textured_non_faces_find_no_face(model, name):
    """Tiles show the detector many small patches of fur or froth: none may pass for a face."""
    texture = open_rgb(name)
    tiled = Image.new("RGB", (texture.width * 3, texture.height * 3))
    for x in range(3):
        for y in range(3):
            tiled.paste(texture, (x * texture.width, y * texture.height))
    for side in (None, 2000, 4000):  # 3 x 3 copies are 1353 px or more: searched finer too
        image = tiled if side is None else texture.resize((side, round(side * texture.height / texture.width)))
        fields = model.predict(image, num_attempts=3).fields
        assert fields["face_found"] is False and fields["num_faces"] == 0
        assert fields["faces"] == {"boxes": [], "scores": []}


def _box_iou_and_nested(a: np.ndarray, b: np.ndarray) -> tuple[float, bool]:
    """The pairwise rules of detection.same_face, in plain Python floats."""
    overlap = max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    area_a, area_b = float((a[2] - a[0]) * (a[3] - a[1])), float((b[2] - b[0]) * (b[3] - b[1]))
    return overlap / (area_a + area_b - overlap), overlap > SAME_FACE_NESTED * min(area_a, area_b)


def _merged_one_pair_at_a_time(found: list, from_tiles: list, second_look) -> list:
    """with_tiles' greedy merge as 1.4.0 wrote it: each candidate against each kept or rejected box."""
    def same_face(a, b) -> bool:
        ratio, nested = _box_iou_and_nested(a.box, b.box)
        return ratio > SAME_FACE_IOU or nested

    kept, rejected = [], []
    for face in sorted(found + from_tiles, key=lambda face: face.score, reverse=True):
        if any(same_face(face, other) for other in kept):
            continue
        if any(_box_iou_and_nested(face.box, other.box)[0] > SAME_FACE_IOU for other in rejected):
            continue
        if any(face is other for other in from_tiles):
            confirmed = second_look(face)
            if confirmed is None:
                rejected.append(face)
                continue
            face = confirmed
        if not any(same_face(face, other) for other in kept):
            kept.append(face)
    return sorted(kept, key=lambda face: face.area, reverse=True)


def test_merging_many_faces_compares_each_with_all_kept_at_once(model, profiles, monkeypatch):
    """54 faces, each seen in up to four overlapping tiles: the merge keeps exactly what comparing
    one pair of boxes at a time keeps, with a bounded number of Python calls per candidate (pair by
    pair, a scene of 770 faces spent 10 s comparing boxes)."""
    layout = [(PORTRAITS[(row + column) % 2], 70, (70 + column * 140, 75 + row * 145))
              for row in range(6) for column in range(9)]
    photo, pasted = group_photo(profiles, "plain", layout)
    rgb = load_image(photo).rgb
    finder = model._finder
    found = whole_frame(finder, rgb, ATTEMPTS[0])
    from_tiles: list = []
    in_tiles = detection._in_tiles
    monkeypatch.setattr(detection, "_in_tiles", lambda *args: from_tiles.extend(in_tiles(*args)) or from_tiles)

    calls = 0

    def count(frame, event: str, arg) -> None:
        nonlocal calls
        calls += event == "call" and frame.f_code.co_filename == detection.__file__

    sys.setprofile(count)
    try:
        merged = detection.with_tiles(finder, rgb, found)
    finally:
        sys.setprofile(None)
    candidates = len(found) + len(from_tiles)
    expected = _merged_one_pair_at_a_time(found, from_tiles, lambda face: detection._second_look(finder, rgb, face))
    assert len(merged) == len(pasted) and candidates > 2 * len(pasted)
    assert [face.box.tolist() for face in merged] == [face.box.tolist() for face in expected]
    assert [face.score for face in merged] == [face.score for face in expected]
    assert calls < 40 * candidates, f"{calls} calls for {candidates} candidates"
