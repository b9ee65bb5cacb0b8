"""The face-profile package served by a local UbiOps, end to end: what a user of `make serve` gets
from curl and from the SDK.

`ubiops_emulator` (the `emulator.testing` plugin) serves this package; under `python -m deployer
check` it is the emulator the check started on the built zip, so these run against the upload.
"""

from __future__ import annotations

import io

import pytest
from face_profile import MODEL_VERSION, WEIGHTS_SHA256
from PIL import Image
from profile_helpers import IMAGES
from ubiops.utils import upload_file


@pytest.fixture
def face_profile(ubiops_emulator):
    return ubiops_emulator


def profile(emulator, image: bytes, name: str = "portrait.jpg", **form: str) -> dict:
    return emulator.request(form, files={"img": (name, image)})


def test_curl_style_portrait_gives_a_face_profile_and_an_annotated_image(face_profile):
    body = profile(face_profile, (IMAGES / "grace_hopper.jpg").read_bytes())
    assert body["status"] == "completed", body
    result = body["result"]
    assert result["face_found"] is True and result["num_faces"] == 1
    assert 1.4 <= result["fwhr"] <= 2.4
    assert abs(result["yaw_degrees"]) < 25 and abs(result["roll_degrees"]) < 20
    assert result["model_id"] == f"face-profile-{MODEL_VERSION}+sha256:{WEIGHTS_SHA256}", "the weights the package checks"
    uri = result["annotated_img"]
    assert uri.startswith(f"ubiops-file://default/deployment_requests/{body['id']}/output/")
    annotated = Image.open(io.BytesIO(face_profile.download(body, uri)))
    assert annotated.format == "JPEG", "the annotated portrait is a real JPEG"
    assert (annotated.width, annotated.height) == (result["image_width"], result["image_height"])


def test_form_options_are_coerced_and_change_the_measurement(face_profile):
    image = (IMAGES / "astronaut.jpg").read_bytes()
    mean = profile(face_profile, image, sampling_strategy="use_all", align_face="false")["result"]
    median = profile(face_profile, image, sampling_strategy="median", align_face="false")["result"]
    assert mean["img_rot_degrees"] == 0 and median["face_found"]
    assert mean["rgb_of_lips"] != median["rgb_of_lips"]


def test_group_photo_lists_every_face(face_profile):
    """Two people a few metres away: faces ~110 and ~80 px wide in a 1280 px photo."""
    group = Image.new("RGB", (1280, 886), (150, 140, 130))
    for name, width, where in (("grace_hopper.jpg", 300, (100, 200)), ("astronaut.jpg", 450, (700, 300))):
        portrait = Image.open(IMAGES / name).convert("RGB")
        group.paste(portrait.resize((width, round(width * portrait.height / portrait.width))), where)
    buffer = io.BytesIO()
    group.save(buffer, format="JPEG", quality=92)
    result = profile(face_profile, buffer.getvalue(), "group.jpg")["result"]
    assert result["face_found"] is True and result["num_faces"] == 2
    boxes, scores = result["faces"]["boxes"], result["faces"]["scores"]
    assert len(boxes) == len(scores) == 2 and all(len(box) == 4 for box in boxes)
    assert boxes[0][0] < 400 < 700 < boxes[1][0], "the larger face (Grace Hopper's) comes first"
    assert result["face_box"][0] < 400


def test_image_without_a_face_completes_with_face_found_false(face_profile):
    body = profile(face_profile, (IMAGES / "coffee.jpg").read_bytes(), "coffee.jpg")
    assert body["status"] == "completed"
    assert body["result"]["face_found"] is False and body["result"]["fwhr"] is None
    assert body["result"]["num_faces"] == 0 and body["result"]["faces"] == {"boxes": [], "scores": []}
    assert body["result"]["annotated_img"] is None


def test_unreadable_file_fails_with_a_clear_message(face_profile):
    body = profile(face_profile, b"this is not an image", "notes.jpg")
    assert body["status"] == "failed" and body["result"] is None
    assert "not a readable image" in body["error_message"]


def test_unknown_sampling_strategy_fails_with_a_clear_message(face_profile):
    body = profile(face_profile, (IMAGES / "grace_hopper.jpg").read_bytes(), sampling_strategy="mode")
    assert body["status"] == "failed" and "sampling_strategy" in body["error_message"]


def test_sdk_sees_the_default_package_fields(face_profile):
    detail = face_profile.sdk().deployments_get(face_profile.project, face_profile.deployment)
    assert [f.name for f in detail.input_fields] == ["img", "sampling_strategy", "align_face", "num_attempts"]
    output_types = {f.name: f.data_type for f in detail.output_fields}
    assert output_types["annotated_img"] == "file" and output_types["faces"] == "dict"
    assert detail.input_fields[1].widget.configuration["default"] == "use_all"


def test_uri_and_multipart_give_the_same_face_profile(face_profile):
    portrait = IMAGES / "grace_hopper.jpg"
    api = face_profile.sdk()
    uri = upload_file(api.api_client, face_profile.project, str(portrait), _progress_bar=False)
    options = {"sampling_strategy": "trimmed", "align_face": True, "num_attempts": 2}
    by_uri = api.deployment_requests_create(face_profile.project, face_profile.deployment, data={"img": uri, **options})
    by_form = face_profile.request(options, files={"img": portrait})
    assert by_uri.status == by_form["status"] == "completed"
    uri_result = {k: v for k, v in by_uri.result.items() if k != "annotated_img"}
    form_result = {k: v for k, v in by_form["result"].items() if k != "annotated_img"}
    assert uri_result == form_result and uri_result["face_found"] is True


def test_a_list_of_portraits_in_one_request_keeps_each_ones_annotated_image(face_profile):
    """A list is one request calling `request` once per item, as `ubiops deployments requests create
    --data A --data B` sends it; each call clears the last one's annotated image, which must already
    have been kept."""
    api = face_profile.sdk()
    names = ("grace_hopper.jpg", "astronaut.jpg")
    options = {"sampling_strategy": "use_all", "align_face": True, "num_attempts": 1}
    items = [{"img": upload_file(api.api_client, face_profile.project, str(IMAGES / name), _progress_bar=False), **options}
             for name in names]
    answer = face_profile.request(items)
    assert answer["status"] == "completed", answer["error_message"]
    for name, result in zip(names, answer["result"], strict=True):
        annotated = Image.open(io.BytesIO(face_profile.download(answer, result["annotated_img"])))
        assert (annotated.width, annotated.height) == Image.open(IMAGES / name).size == \
            (result["image_width"], result["image_height"])
