"""The default face-profile package served by the emulator, end to end: what a user of
`make serve` gets from curl and from the SDK.

These are the emulator tests `python -m deployer check` runs against the built zip: it serves the
zip itself and passes its address as `EMULATOR_URL`; otherwise the tests start an emulator on
`EMULATOR_PACKAGE` (default: the `deployment_package/` folder).
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import httpx
import pytest
from PIL import Image

from harness import DEPLOYMENT, PROJECT, ROOT, Emulator

IMAGES = ROOT / "tests" / "images"
PROFILE_URL_TIMEOUT = 120

pytestmark = pytest.mark.emulator_package


@pytest.fixture(scope="module")
def face_profile(emulators, tmp_path_factory):
    if os.environ.get("EMULATOR_URL"):
        return Emulator(process=None, url=os.environ["EMULATOR_URL"], log_path=tmp_path_factory.mktemp("log") / "none.log")
    return emulators(Path(os.environ.get("EMULATOR_PACKAGE", ROOT / "deployment_package")))


def profile(emulator, image: bytes, name: str = "portrait.jpg", **form: str) -> dict:
    response = httpx.post(emulator.requests_url(), files={"img": (name, image)}, data=form, timeout=PROFILE_URL_TIMEOUT)
    assert response.status_code == 200, response.text
    return response.json()


def test_curl_style_portrait_gives_a_face_profile_and_an_annotated_image(face_profile):
    body = profile(face_profile, (IMAGES / "grace_hopper.jpg").read_bytes())
    assert body["status"] == "completed", body
    result = body["result"]
    assert result["face_found"] is True and result["num_faces"] == 1
    assert 1.4 <= result["fwhr"] <= 2.4
    assert abs(result["yaw_degrees"]) < 25 and abs(result["roll_degrees"]) < 20
    assert result["model_id"].startswith("face-profile-") and "sha256:64184e22" in result["model_id"]
    uri = result["annotated_img"]
    assert uri.startswith(f"ubiops-file://default/deployment_requests/{body['id']}/output/")
    annotated = Image.open(io.BytesIO(httpx.get(body["emulator_file_urls"][uri]).content))
    assert annotated.format == "JPEG", "the annotated portrait (levelled when align_face) is a real JPEG"
    assert annotated.width >= result["image_width"] and annotated.height >= result["image_height"]


def test_form_options_are_coerced_and_change_the_measurement(face_profile):
    image = (IMAGES / "astronaut.jpg").read_bytes()
    mean = profile(face_profile, image, sampling_strategy="use_all", align_face="false")["result"]
    median = profile(face_profile, image, sampling_strategy="median", align_face="false")["result"]
    assert mean["img_rot_degrees"] == 0 and median["face_found"]
    assert mean["rgb_of_lips"] != median["rgb_of_lips"]


def test_image_without_a_face_completes_with_face_found_false(face_profile):
    body = profile(face_profile, (IMAGES / "coffee.jpg").read_bytes(), "coffee.jpg")
    assert body["status"] == "completed"
    assert body["result"]["face_found"] is False and body["result"]["fwhr"] is None
    assert body["result"]["annotated_img"] is None


def test_unreadable_file_fails_with_a_clear_message(face_profile):
    body = profile(face_profile, b"this is not an image", "notes.jpg")
    assert body["status"] == "failed" and body["result"] is None
    assert "not a readable image" in body["error_message"]


def test_unknown_sampling_strategy_fails_with_a_clear_message(face_profile):
    body = profile(face_profile, (IMAGES / "grace_hopper.jpg").read_bytes(), sampling_strategy="mode")
    assert body["status"] == "failed" and "sampling_strategy" in body["error_message"]


def test_sdk_sees_the_default_package_fields(face_profile):
    detail = face_profile.sdk().deployments_get(PROJECT, DEPLOYMENT)
    assert [f.name for f in detail.input_fields] == ["img", "sampling_strategy", "align_face", "num_attempts"]
    assert {f.name: f.data_type for f in detail.output_fields}["annotated_img"] == "file"
    assert detail.input_fields[1].widget.configuration["default"] == "use_all"
