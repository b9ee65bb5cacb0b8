"""`python -m deployer push` end to end: the real deployer, through the real SDK, against a real emulator."""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import os
import pty
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from conftest import DEPLOYER_SECONDS, TOKEN, proxied
from harness import PROJECT, ended, eventually, hangups, ignored_signals, start_emulator

from contract.names import NAME_RULE
from deployer.client import UPLOAD_READ_SECONDS, Api, upload_timeout
from deployer.errors import DeployerError
from deployer.progress import wait_for_build


def versions(emulator, deployment: str) -> list[str]:
    return [v.version for v in emulator.sdk().deployment_versions_list(PROJECT, deployment)]


def test_first_push_creates_the_deployment_and_v1_then_v2_serving_the_tested_bytes(project, remote_ubiops):
    first = project.push_json(emulator=remote_ubiops)
    assert (first["deployment"], first["version"], first["build_status"]) == (project.deployment, "v1", "success")
    api = remote_ubiops.sdk()
    detail = api.deployments_get(PROJECT, project.deployment)
    assert [(f.name, f.data_type) for f in detail.input_fields] == [("x", "int")]
    assert first["smoke"] == {"status": "completed", "error_message": None, "differences": []}

    project.expect(63)
    (project.package / "deployment.py").write_text((project.package / "deployment.py").read_text().replace("= 2", "= 3"))
    second = project.push_json("--promote", emulator=remote_ubiops)
    assert (second["version"], second["promoted"]) == ("v2", True)
    assert second["sha256"] != first["sha256"]
    assert api.deployments_get(PROJECT, project.deployment).default_version == "v2"
    assert api.deployment_requests_create(PROJECT, project.deployment, {"x": 1}).result == {"y": 3}
    version = api.deployment_versions_get(PROJECT, project.deployment, "v2")
    assert version.minimum_instances == 0 and version.request_retention_mode == "metadata"

    download = httpx.get(f"{remote_ubiops.api}/projects/{PROJECT}/deployments/{project.deployment}/versions/v2/"
                         f"revisions/{second['revision']}/download", headers={"Authorization": f"Token {TOKEN}"})
    assert hashlib.sha256(download.content).hexdigest() == second["sha256"]
    tested = project.root / "dist" / f"{project.deployment}-{second['sha256'][:12]}.zip"
    assert hashlib.sha256(tested.read_bytes()).hexdigest() == second["sha256"]


def test_text_output_shows_progress_and_never_the_token(project, remote_ubiops):
    result = project.run("push", emulator=remote_ubiops)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "check passed" in result.stdout and "build success" in result.stdout and "version: v1" in result.stdout
    assert TOKEN not in result.stdout + result.stderr
    assert TOKEN.encode() not in next((project.root / "dist").glob("*.zip")).read_bytes()


def push_slow_build(project, remote_ubiops, init_seconds: int, *flags: str, **streams) -> subprocess.Popen:
    """`python -m deployer push --skip-tests [flags]`, running, of a package whose `__init__` takes `init_seconds`."""
    (project.package / "deployment.py").write_text(
        f"import time\n\nclass Deployment:\n    def __init__(self):\n        time.sleep({init_seconds})\n"
        "    def request(self, data):\n        return {'y': data['x'] * 2}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("UBIOPS_", "EMULATOR_"))}
    env.update(UBIOPS_API_TOKEN=TOKEN, UBIOPS_API_HOST=remote_ubiops.api)
    return subprocess.Popen([sys.executable, "-m", "deployer", "push", "--skip-tests", *flags], cwd=project.root, env=env,
                            stdin=subprocess.DEVNULL, **streams)


def test_on_a_terminal_the_build_wait_is_one_line_redrawn_in_place(project, remote_ubiops):
    """Run under a pseudo-terminal, as in a shell: the wait's seconds tick on one redrawn line."""
    controller, terminal = pty.openpty()
    process = push_slow_build(project, remote_ubiops, 3, stdout=terminal, stderr=subprocess.PIPE)
    os.close(terminal)
    shown = b""
    with contextlib.suppress(OSError):  # the terminal closes (EIO) when the deployer has exited
        while chunk := os.read(controller, 4096):
            shown += chunk
    os.close(controller)
    assert process.wait(timeout=120) == 0, process.stderr.read() if process.stderr else ""
    text = shown.decode()
    assert "\r\x1b[K  build still deploying (" in text, text
    assert "  build deploying (" in text and "  build success (" in text
    assert "\n  build success (" in text, "a status change starts a line of its own"


def test_version_cap_stops_naming_the_oldest_and_prune_deletes_them(project, remote_ubiops):
    project.configure(max_versions=2)
    for _ in range(2):
        project.push_json("--skip-tests", emulator=remote_ubiops)
    refused = project.run("push", "--skip-tests", emulator=remote_ubiops)
    assert refused.returncode == 1
    assert refused.stderr.strip().splitlines() == [
        f"deployer: error: deployment {project.deployment} is at its cap of 2 versions (max_versions); "
        "oldest non-default: v2; delete them or push with --prune"]
    assert versions(remote_ubiops, project.deployment) == ["v1", "v2"]

    pruned = project.push_json("--skip-tests", "--prune", emulator=remote_ubiops)
    assert pruned["version"] == "v3"
    assert versions(remote_ubiops, project.deployment) == ["v1", "v3"], "v1 is the default, so v2 went"


def test_a_cap_enforced_by_the_api_is_one_clear_line(project, tmp_path):
    capped = start_emulator("echo", tmp_path, "--max-versions", "1")
    try:
        project.push_json("--skip-tests", emulator=capped)
        refused = project.run("push", "--skip-tests", emulator=capped)
    finally:
        capped.stop()
    assert refused.returncode == 1
    assert refused.stderr.strip().splitlines()[-1] == (
        f"deployer: error: 400: deployment '{project.deployment}': Deployment '{project.deployment}' has reached "
        "its maximum of 1 versions; delete a version first")


def test_a_failing_emulator_test_blocks_the_push(project, remote_ubiops):
    project.expect(43)
    result = project.run("push", emulator=remote_ubiops)
    assert result.returncode == 1
    assert "FAIL emulator tests" in result.stdout and "check FAILED: emulator tests" in result.stdout
    assert result.stderr.strip() == "deployer: error: the check failed, so nothing was uploaded"
    assert project.deployment not in [d.name for d in remote_ubiops.sdk().deployments_list(PROJECT)]


def test_a_broken_package_fails_its_build_and_the_push_exits_with_the_build_error(project, remote_ubiops):
    (project.package / "deployment.py").write_text(
        "class Deployment:\n    def __init__(self):\n        raise RuntimeError('weights missing')\n"
        "    def request(self, data):\n        return data\n")
    result = project.run("push", "--skip-tests", emulator=remote_ubiops)
    assert result.returncode == 1
    assert "WARNING: --skip-tests" in result.stdout and "build failed" in result.stdout
    error = result.stderr.strip().splitlines()[-1]
    assert error.startswith(f"deployer: error: the build of {project.deployment}/v1 failed: ")
    assert "RuntimeError: weights missing" in error
    version = remote_ubiops.sdk().deployment_versions_get(PROJECT, project.deployment, "v1")
    assert version.status == "unavailable" and version.active_revision is None


def test_the_same_broken_package_is_caught_by_check_before_any_upload(project, remote_ubiops):
    (project.package / "deployment.py").write_text(
        "class Deployment:\n    def __init__(self):\n        raise RuntimeError('weights missing')\n"
        "    def request(self, data):\n        return data\n")
    result = project.run("push", emulator=remote_ubiops)
    assert result.returncode == 1
    assert "FAIL emulator: the zip does not start" in result.stdout and "weights missing" in result.stdout


def test_push_skipping_the_tests_uploads_a_class_the_static_check_cannot_read(project, remote_ubiops):
    """`from model import Model as Deployment` was refused ("defines no top-level class Deployment"),
    even with --skip-tests, though UbiOps (and the emulator) serve it."""
    (project.package / "model.py").write_text((project.package / "deployment.py").read_text().replace("Deployment", "Model"))
    (project.package / "deployment.py").write_text("from model import Model as Deployment\n")
    pushed = project.push_json("--skip-tests", emulator=remote_ubiops)
    assert pushed["build_status"] == "success"
    assert remote_ubiops.sdk().deployment_requests_create(PROJECT, project.deployment, {"x": 21}).result == {"y": 42}


def test_a_bad_token_is_one_line(project, remote_ubiops):
    result = project.run("push", "--skip-tests", emulator=remote_ubiops, token="wrong-token-value")
    assert result.returncode == 1
    assert result.stderr.strip() == "deployer: error: 401: the token was refused"
    assert "wrong-token-value" not in result.stdout + result.stderr


def test_an_unknown_project_is_named(project, remote_ubiops):
    project.configure(project="no-such-project")
    result = project.run("status", emulator=remote_ubiops)
    assert result.stderr.strip() == "deployer: error: 404: project 'no-such-project' was not found (Project not found)"


def test_fields_cannot_drift_silently(project, remote_ubiops):
    project.push_json("--skip-tests", emulator=remote_ubiops)
    (project.package / "ubiops_output_spec.json").write_text(json.dumps([{"name": "y", "data_type": "double"}]))
    refused = project.run("push", "--skip-tests", emulator=remote_ubiops)
    assert refused.returncode == 1
    assert refused.stderr.strip() == (
        f"deployer: error: deployment {project.deployment} has other fields than the package (output fields: "
        "deployment y:int, package y:double); push with --update-fields to change the deployment's fields")
    warned = project.run("push", "--skip-tests", "--update-fields", "--dry-run", emulator=remote_ubiops)
    assert warned.returncode == 1 and warned.stderr.strip() == (
        f"deployer: error: --update-fields changes the fields of every version of {project.deployment} (output fields: "
        "deployment y:int, package y:double); built for the old fields: v1, whose requests fail where their code does "
        "not take or give the new ones; push again with --yes to go on, or push to another deployment")
    assert project.run("push", "--skip-tests", "--update-fields", emulator=remote_ubiops).stderr == warned.stderr
    taken = project.run("push", "--skip-tests", "--update-fields", "--yes", "--version", "v1", emulator=remote_ubiops)
    assert (taken.returncode, taken.stderr.strip()) == (
        1, f"deployer: error: version v1 of {project.deployment} exists already; choose another --version")
    fields = remote_ubiops.sdk().deployments_get(PROJECT, project.deployment).output_fields
    assert [(f.name, f.data_type) for f in fields] == [("y", "int")], "refused before the fields were changed"
    updated = project.push_json("--skip-tests", "--update-fields", "--yes", emulator=remote_ubiops)
    assert updated["version"] == "v2"
    fields = remote_ubiops.sdk().deployments_get(PROJECT, project.deployment).output_fields
    assert [(f.name, f.data_type) for f in fields] == [("y", "double")]


def test_dry_run_prints_the_calls_and_changes_nothing(project, remote_ubiops):
    result = project.run("push", "--dry-run", "--skip-tests", emulator=remote_ubiops)
    assert result.returncode == 0, result.stderr
    assert f"would  deployments_create('{PROJECT}', {{" in result.stdout
    assert f"would  deployment_versions_create('{PROJECT}', " in result.stdout
    assert "would  revisions_file_upload(" in result.stdout
    assert project.deployment not in [d.name for d in remote_ubiops.sdk().deployments_list(PROJECT)]


def test_dry_run_of_an_existing_deployment_lists_its_versions_once(project, remote_ubiops):
    project.push_json("--skip-tests", emulator=remote_ubiops)
    result = project.run("push", "--dry-run", "--skip-tests", emulator=remote_ubiops)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("call   deployment_versions_list(") == 1
    assert f"would  deployment_versions_create('{PROJECT}', '{project.deployment}', {{'version': 'v2'" in result.stdout


def test_push_checks_the_token_before_the_emulator_tests(project, remote_ubiops):
    """A missing or refused token is the first thing a push says, not what it says after the tests."""
    missing = project.run("push", "--dry-run", emulator=remote_ubiops, token="")
    assert missing.returncode == 1 and "running" not in missing.stdout
    assert missing.stderr.strip().startswith("deployer: error: UBIOPS_API_TOKEN is not set")
    refused = project.run("push", emulator=remote_ubiops, token="wrong-token-value")
    assert refused.returncode == 1 and "emulator tests" not in refused.stdout
    assert refused.stderr.strip() == "deployer: error: 401: the token was refused"


def test_status_and_request(project, remote_ubiops):
    project.push_json("--skip-tests", emulator=remote_ubiops)
    status = project.run("status", emulator=remote_ubiops)
    assert f"{project.deployment} (default: v1)" in status.stdout and "available" in status.stdout
    answer = project.run("request", "--data", '{"x": 5}', "--version", "v1", emulator=remote_ubiops)
    assert answer.returncode == 0, answer.stderr
    assert json.loads(answer.stdout)["result"] == {"y": 10}
    refused = project.run("request", "--data", '{"x": NaN}', emulator=remote_ubiops)  # Python's JSON reads NaN; JSON has none
    assert (refused.returncode, refused.stderr.strip()) == (
        1, f"deployer: error: the data for deployment '{project.deployment}' is not valid JSON: "
           "Out of range float values are not JSON compliant")


def test_files_are_uploaded_for_the_sample_and_the_request(project, remote_ubiops):
    """A file field's local path is uploaded to the bucket and sent as its URI: by `check` to the local
    emulator, by the smoke request and by `request --file` to UbiOps. Files of one name and other
    contents (`a/x.txt`, `b/x.txt`) stay apart (both were once `deployer/x.txt`, the last upload read
    twice), and the deployment still sees the file's own name."""
    (project.package / "deployment.py").write_text(
        "import os\n\nclass Deployment:\n    def request(self, data):\n        with open(data['doc']) as doc:\n"
        "            text = f\"{os.path.basename(data['doc'])}: {doc.read()}\"\n"
        "        return {'text': text, 'contents': [open(path).read() for path in data['docs']]}\n")
    (project.package / "ubiops_input_spec.json").write_text(json.dumps([{"name": "doc", "data_type": "file"},
                                                                        {"name": "docs", "data_type": "array_file"}]))
    (project.package / "ubiops_output_spec.json").write_text(json.dumps([{"name": "text", "data_type": "string"},
                                                                         {"name": "contents", "data_type": "array_string"}]))
    (project.root / "sample.txt").write_text("the sample")
    (project.root / "other.txt").write_text("another file")
    for folder, content in (("a", "A"), ("b", "B")):
        (project.root / folder).mkdir()
        (project.root / folder / "x.txt").write_text(content)
    project.configure(sample_input={"doc": "sample.txt", "docs": ["a/x.txt", "b/x.txt"]}, test_command='python -c "pass"')
    pushed = project.push_json(emulator=remote_ubiops)
    assert pushed["smoke"] == {"status": "completed", "error_message": None, "differences": []}
    answer = project.run("--output", "json", "request", "--file", "other.txt", emulator=remote_ubiops)
    assert answer.returncode == 0, answer.stderr
    assert json.loads(answer.stdout)["result"] == {"text": "other.txt: another file", "contents": ["A", "B"]}


def test_a_plain_deployment_is_checked_and_smoke_tested_with_its_sample_text(project, remote_ubiops):
    (project.package / "deployment.py").write_text("class Deployment:\n    def request(self, data):\n        return data.upper()\n")
    for spec in ("ubiops_input_spec.json", "ubiops_output_spec.json"):
        (project.package / spec).unlink()
    project.configure(sample_input="hello", test_command='python -c "pass"')
    pushed = project.run("--output", "json", "push", emulator=remote_ubiops)
    assert pushed.returncode == 0, pushed.stderr
    assert "ok   sample_input: the text for the plain-text input" in pushed.stderr
    assert "ok   sample request: completed in the emulator" in pushed.stderr
    assert json.loads(pushed.stdout)["smoke"] == {"status": "completed", "error_message": None, "differences": []}
    answer = project.run("--output", "json", "request", emulator=remote_ubiops)
    assert answer.returncode == 0, answer.stderr
    assert json.loads(answer.stdout)["result"] == "HELLO"

    project.configure(sample_input={"x": 3})
    refused = project.run("request", "--data", "hi", emulator=remote_ubiops)
    assert (refused.returncode, refused.stderr.strip()) == (1, "deployer: error: [tool.deployer] sample_input is a table of fields, "
                                                               "but the deployment's input is plain text: give the text itself "
                                                               '(sample_input = "text")')


def test_ctrl_c_while_the_build_runs_says_everything_changed_at_ubiops(project, remote_ubiops):
    """Fields updated, a version pruned and a deployment variable set before the interrupt are said
    with the build left going on (the message named the build alone, and before the upload said
    nothing was changed)."""
    project.configure(max_versions=2)
    for _ in range(2):
        project.push_json("--skip-tests", emulator=remote_ubiops)
    (project.package / "ubiops_output_spec.json").write_text(json.dumps([{"name": "y", "data_type": "double"}]))
    project.configure(max_versions=2, environment_variables={"FACTOR": "2"}, environment_variables_level="deployment")
    process = push_slow_build(project, remote_ubiops, 60, "--prune", "--update-fields", "--yes",
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in process.stdout:
        if "build building" in line or "build deploying" in line:  # building can pass between two polls
            break
    process.send_signal(signal.SIGINT)
    _, stderr = ended(process)
    assert process.returncode == 130
    deployment = project.deployment
    assert stderr.strip().splitlines()[-1] == (
        f"deployer: error: interrupted: changed at UbiOps so far: the fields of deployment {deployment} were updated; "
        f"version v2 was pruned; revision {_revision(remote_ubiops, project, 'v3')} of {deployment}/v3 was uploaded and "
        "its build goes on at UbiOps; follow it with `python -m deployer status`; "
        f"FACTOR set on deployment {deployment} (its running versions restart with them)")


def test_a_failure_after_the_version_was_created_names_the_empty_version(project, remote_ubiops):
    """The revision upload fails (a proxy in front of the emulator answers it 500): the error says the
    deployment and the version were created, the version without a package (it said nothing of them),
    once UbiOps lists no revision of it (a 5xx, a gateway's, may come after the upload arrived). With
    `--output json` the error and the changes are on stdout too (it had nothing)."""
    with failing(remote_ubiops, r"^POST .*/revisions$") as api:
        result = project.run("--output", "json", "push", "--skip-tests", env={"UBIOPS_API_HOST": api})
    assert result.returncode == 1
    deployment = project.deployment
    changes = [f"created deployment {deployment}",
               f"version v1 of {deployment} was created without a package: UbiOps listed no revision of it once the "
               "upload failed (it stays unavailable unless the upload still lands: see `python -m deployer status`, "
               "then delete it)"]
    error = f"500: version 'v1': injected failure; changed at UbiOps so far: {'; '.join(changes)}"
    assert result.stderr.strip().splitlines()[-1] == f"deployer: error: {error}"
    assert json.loads(result.stdout) == {"error": error, "changes": changes}
    assert remote_ubiops.sdk().deployment_versions_get(PROJECT, deployment, "v1").status == "unavailable"


def upload_unanswered(forward_it: bool) -> tuple[Callable, threading.Event]:
    """A proxy's answer (`proxied`) that passes the revision's upload on to the emulator if `forward_it`,
    then leaves it unanswered until the event returned is set; a later list of the revisions waits until
    the upload was passed on (the deployer times out however long that takes)."""
    passed_on, release = threading.Event(), threading.Event()

    def answer(call: str, forward: Callable[[], httpx.Response]) -> httpx.Response | None:
        if re.search(r"^POST .*/revisions$", call):
            if forward_it:
                forward()
            passed_on.set()
            release.wait(DEPLOYER_SECONDS)
            return None
        if re.search(r"^GET .*/revisions$", call):
            passed_on.wait(DEPLOYER_SECONDS)
        return forward()

    return answer, release


SHORT_UPLOAD_WAIT = "import deployer.client\ndeployer.client.UPLOAD_READ_SECONDS = 1"
"""The deployer's wait for an upload's answer cut to 1 s (from 120 s, plus its share of the zip's size)."""


def test_an_upload_whose_answer_does_not_come_is_looked_up_and_the_push_goes_on(project, remote_ubiops):
    """The zip arrived but its answer did not come within the read timeout (UbiOps stores a large zip
    before it answers): the push said the version had no package and was to be deleted, though it was
    built. It lists the version's revisions instead, finds the upload and follows its build."""
    answer, release = upload_unanswered(forward_it=True)
    with proxied(remote_ubiops, answer) as api:
        try:
            result = project.run("--output", "json", "push", "--skip-tests", env={"UBIOPS_API_HOST": api},
                                 setup=SHORT_UPLOAD_WAIT)
        finally:
            release.set()
    assert result.returncode == 0, result.stdout + result.stderr
    summary = json.loads(result.stdout)
    revision = _revision(remote_ubiops, project, "v1")
    assert (summary["revision"], summary["build_status"]) == (revision, "success")
    assert "the upload failed (the UbiOps API at " in result.stderr and "did not answer version 'v1' in time" in result.stderr
    assert f"but UbiOps lists revision {revision} of {project.deployment}/v1: the upload arrived; going on" in result.stderr
    assert "delete it" not in result.stderr


def test_an_upload_that_never_arrived_says_the_version_has_no_revision(project, remote_ubiops):
    """The upload's answer does not come and UbiOps lists no revision: the version has no package, as said."""
    answer, release = upload_unanswered(forward_it=False)
    with proxied(remote_ubiops, answer) as api:
        try:
            result = project.run("push", "--skip-tests", env={"UBIOPS_API_HOST": api}, setup=SHORT_UPLOAD_WAIT)
        finally:
            release.set()
    assert result.returncode == 1
    error = result.stderr.strip().splitlines()[-1]
    assert error.startswith(f"deployer: error: the UbiOps API at {api} did not answer version 'v1' in time ("), error
    assert error.endswith(f"; changed at UbiOps so far: created deployment {project.deployment}; version v1 of "
                          f"{project.deployment} was created without a package: UbiOps listed no revision of it once "
                          "the upload failed (it stays unavailable unless the upload still lands: see `python -m "
                          "deployer status`, then delete it)"), error


def test_the_wait_for_an_uploads_answer_grows_with_the_zip():
    """UbiOps answers once the zip is stored: a 2 GB zip may take far longer than a small one."""
    small, large = upload_timeout(1024**2), upload_timeout(2 * 1024**3)
    assert small[1] >= UPLOAD_READ_SECONDS and large[1] >= small[1] + 1000


def failing(emulator, route: str, times: int | None = None, refused: list[str] | None = None):
    """A real HTTP proxy in front of `emulator` that answers the calls whose `METHOD path` matches the
    regex `route` with a 500 (the first `times` of them; all by default), noting each in `refused`,
    and passes every other on; its API's URL."""
    failed = itertools.count()

    def answer(call: str, forward: Callable[[], httpx.Response]) -> httpx.Response:
        if re.search(route, call) and (times is None or next(failed) < times):
            if refused is not None:
                refused.append(call)
            return httpx.Response(500, json={"error": "injected failure"})
        return forward()

    return proxied(emulator, answer)


def _revision(emulator, project, version: str) -> str:
    return emulator.sdk().deployment_versions_get(PROJECT, project.deployment, version).latest_revision


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_a_terminated_check_stops_its_emulator_and_its_tests(project, tmp_path, signum):
    """SIGTERM, as a cancelled CI job sends, or SIGHUP, as a closed terminal or a dropped SSH session
    sends, ends `check` as Ctrl-C does: no emulator or test process is left running, nor the scratch
    folder, which holds the secrets (they outlived the deployer, adopted by init)."""
    project.configure(test_command='python -c "import time; time.sleep(60)"')
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("UBIOPS_", "EMULATOR_"))} | {"TMPDIR": str(scratch)}
    with hangups(signal.SIG_DFL):
        process = subprocess.Popen([sys.executable, "-m", "deployer", "check"], cwd=project.root, env=env,
                                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    started = eventually(lambda: _with_the_tests_running(project.root), "the test command running", DEPLOYER_SECONDS)
    assert list(scratch.glob("deployer-check-*")), "the check's scratch folder is where TMPDIR says"
    process.send_signal(signum)
    _, stderr = ended(process)
    assert (process.returncode, stderr.strip()) == (130, "deployer: interrupted")
    assert not any(pid in _processes_naming(project.root) for pid in started), "left running"
    assert not list(scratch.glob("deployer-check-*")), "scratch folder left behind"


def test_a_check_started_with_hangups_ignored_keeps_ignoring_them(project):
    """`nohup python -m deployer push &` asks for hangups to be ignored: the deployer handled SIGHUP as
    Ctrl-C all the same, and stopped with the terminal it was started from."""
    project.configure(test_command='python -c "import time; time.sleep(60)"')
    env = {k: v for k, v in os.environ.items() if not k.startswith(("UBIOPS_", "EMULATOR_"))}
    with hangups(signal.SIG_IGN):
        process = subprocess.Popen([sys.executable, "-m", "deployer", "check"], cwd=project.root, env=env,
                                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        eventually(lambda: _with_the_tests_running(project.root), "the test command running", DEPLOYER_SECONDS)
        assert "SIGHUP" in ignored_signals(process.pid)
    finally:
        process.send_signal(signal.SIGTERM)
        ended(process)


def test_ctrl_c_during_a_pushs_check_says_nothing_was_changed_at_ubiops(project, remote_ubiops):
    """It said only `deployer: interrupted`, though the push had changed nothing."""
    project.configure(test_command='python -c "import time; time.sleep(60)"')
    env = {k: v for k, v in os.environ.items() if not k.startswith(("UBIOPS_", "EMULATOR_"))}
    env |= {"UBIOPS_API_TOKEN": TOKEN, "UBIOPS_API_HOST": remote_ubiops.api}
    process = subprocess.Popen([sys.executable, "-m", "deployer", "push"], cwd=project.root, env=env,
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    started = eventually(lambda: _with_the_tests_running(project.root), "the test command running", DEPLOYER_SECONDS)
    process.send_signal(signal.SIGINT)
    _, stderr = ended(process)
    assert (process.returncode, stderr.strip()) == (130, "deployer: error: interrupted: nothing was changed at UbiOps")
    assert not any(pid in _processes_naming(project.root) for pid in started), "left running"
    assert project.deployment not in [d.name for d in remote_ubiops.sdk().deployments_list(PROJECT)]


def test_a_terminated_check_stops_the_processes_its_tests_started(project):
    """Only the test command itself was killed: a shell's `sleep`, in its process group, went on."""
    project.configure(test_command="sh -c 'sleep 1234; true'")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("UBIOPS_", "EMULATOR_"))}
    process = subprocess.Popen([sys.executable, "-m", "deployer", "check"], cwd=project.root, env=env,
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    eventually(lambda: _with_the_tests_running(project.root, "sleep 1234"), "the test's sleep running", DEPLOYER_SECONDS)
    process.send_signal(signal.SIGTERM)
    _, stderr = ended(process)
    assert (process.returncode, stderr.strip()) == (130, "deployer: interrupted")
    assert not _with_the_tests_running(project.root, "sleep 1234"), "left running"


@pytest.mark.parametrize("output", [">/dev/null 2>&1", ""], ids=["its-own-output", "the-tests-output"])
def test_a_process_the_tests_left_running_ends_with_them(project, output):
    """Also one that holds the tests' output open: the check read it to its end before it ended their group,
    so it waited for that process (for ever, for a server)."""
    project.configure(test_command=f"sh -c 'sleep 1235 {output} & echo 1 passed'")
    result = project.run("check")
    assert result.returncode == 0, result.stdout + result.stderr
    assert not _with_the_tests_running(project.root, "sleep 1235"), "left running"


def test_tests_that_run_past_test_timeout_fail_and_are_ended(project):
    """A hanging test command held `check` (and `push`) for ever."""
    project.configure(test_command="sh -c 'echo started; sleep 1237'", test_timeout=1)
    result = project.run("check")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "FAIL emulator tests: timed out after 1 s" in result.stdout and "started" in result.stdout
    assert not _with_the_tests_running(project.root, "sleep 1237"), "left running"


def _with_the_tests_running(root, command: str = "time.sleep(60)") -> dict[int, str] | None:
    """The project's processes, once its test command runs (it starts after the emulator)."""
    found = _processes_naming(root)
    return found if any(command in line for line in found.values()) else None


def _processes_naming(root) -> dict[int, str]:
    """The running processes whose command line or working folder is the project's (its tests, its emulator)."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        with contextlib.suppress(OSError):
            command = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            if Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z" and (
                    str(root) in command or os.readlink(f"/proc/{entry}/cwd") == str(root)):
                found[int(entry)] = command
    return found


def test_a_zip_changed_after_its_tests_is_refused_before_anything_changes_at_ubiops(project, remote_ubiops):
    """The tests themselves change the zip they were given: the push stops before it creates the
    deployment (it once created the deployment and an empty version first)."""
    (project.root / "emulator_check.py").write_text(
        "import os\nwith open(os.environ['EMULATOR_PACKAGE'], 'ab') as zip_file:\n    zip_file.write(b'x')\n")
    result = project.run("push", emulator=remote_ubiops)
    assert result.returncode == 1
    assert "changed after it was checked" in result.stderr and result.stderr.strip().endswith("nothing was changed at UbiOps")
    assert project.deployment not in [d.name for d in remote_ubiops.sdk().deployments_list(PROJECT)]


def test_dist_removed_during_the_push_still_ships_the_tested_bytes(project, remote_ubiops):
    """`make clean` while the tests ran: the copy to upload, made by the zip's name, ended the push with
    a FileNotFoundError traceback. The zip held open is copied instead."""
    (project.root / "emulator_check.py").write_text("import shutil\nshutil.rmtree('dist')\n")
    summary = project.push_json("--no-wait", emulator=remote_ubiops)
    assert not (project.root / "dist").exists()
    download = httpx.get(f"{remote_ubiops.api}/projects/{PROJECT}/deployments/{project.deployment}/versions/v1/"
                         f"revisions/{summary['revision']}/download", headers={"Authorization": f"Token {TOKEN}"})
    assert hashlib.sha256(download.content).hexdigest() == summary["sha256"]


def test_a_copy_to_upload_that_cannot_be_made_is_one_line_and_uploads_nothing(project, remote_ubiops, tmp_path):
    """An OSError making the private copy (here its temporary folder gone; a full disk alike) was a traceback."""
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    (project.root / "emulator_check.py").write_text("import os, shutil\nshutil.rmtree(os.environ['TMPDIR'])\n")
    project.configure(sample_input={})
    result = project.run("push", emulator=remote_ubiops, env={"TMPDIR": str(scratch)})
    assert result.returncode == 1, result.stdout + result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr, result.stderr
    assert result.stderr.startswith(f"deployer: error: cannot copy {project.root / 'dist'}"), result.stderr
    assert result.stderr.strip().endswith("nothing was changed at UbiOps")
    assert project.deployment not in [d.name for d in remote_ubiops.sdk().deployments_list(PROJECT)]


@pytest.mark.parametrize("flags, message", [
    (["--maximum-idle-time", "5"], "--maximum-idle-time must be at least 10 and at most 3600"),
    (["--minimum-instances", "-1"], "--minimum-instances must be at least 0"),
    (["--max-versions", "0"], "--max-versions must be at least 1"),
    (["--minimum-instances", "3", "--maximum-instances", "1"],
     "with the flags given, minimum_instances (3) exceeds maximum_instances (1)"),
    (["--version", "V3_typo"], f"--version must be a UbiOps name: {NAME_RULE}"),
])
def test_setting_flags_meet_the_configs_rules_before_anything_runs(project, remote_ubiops, flags, message):
    """As the same values in [tool.deployer] are: refused at once, not after the tests and a deployment made."""
    result = project.run("push", *flags, emulator=remote_ubiops)
    assert (result.returncode, result.stderr.strip(), result.stdout) == (1, f"deployer: error: {message}", "")
    assert project.deployment not in [d.name for d in remote_ubiops.sdk().deployments_list(PROJECT)]


@pytest.mark.parametrize("flags, message", [
    *((["--timeout", timeout], "--timeout must be a positive number of seconds") for timeout in ("0", "-5", "nan")),
    (["--promote", "--no-wait"], "--promote waits for the build to succeed before making the version the default: "
                                 "it cannot go with --no-wait"),
])
def test_push_flags_that_cannot_work_are_refused(project, flags, message):
    """Refused as a usage error before anything runs (--promote --no-wait pushed, never promoted, and exited 0)."""
    result = project.run("push", *flags)
    assert result.returncode == 2 and result.stderr.strip().endswith(f"error: {message}"), result.stderr


def test_promote_waits_for_the_smoke_request_and_skips_a_version_that_fails_it(project, remote_ubiops):
    """The new version was made the default before its smoke request: one failing it was served at once."""
    project.push_json("--skip-tests", emulator=remote_ubiops)
    (project.package / "deployment.py").write_text(
        "class Deployment:\n    def request(self, data):\n        raise RuntimeError('broken on purpose')\n")
    result = project.run("--output", "json", "push", "--skip-tests", "--promote", emulator=remote_ubiops)
    assert result.returncode == 1, result.stderr
    summary = json.loads(result.stdout)
    assert (summary["version"], summary["promoted"], summary["smoke"]["status"]) == ("v2", False, "failed")
    assert summary["promotion_skipped"] == "the smoke request failed"
    assert (f"NOT promoted: the smoke request to v2 failed, so the default version of {project.deployment} "
            "stays as it was") in result.stderr
    assert remote_ubiops.sdk().deployments_get(PROJECT, project.deployment).default_version == "v1"


def test_a_push_without_sample_input_says_no_smoke_request_is_sent_and_the_promotion_is_untested(project, remote_ubiops):
    """Before, it promoted without a smoke request and said nothing of it."""
    project.configure(sample_input={})
    result = project.run("--output", "json", "push", "--skip-tests", "--promote", emulator=remote_ubiops)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert (summary["promoted"], summary["smoke"]) == (True, None)
    assert "  note sample_input: none configured, so no sample request is sent here, nor a smoke request by push" in result.stderr
    assert "no sample_input: no smoke request is sent, so v1 is made the default untested" in result.stderr


def test_a_build_status_call_that_fails_for_a_while_does_not_end_the_push(project, remote_ubiops):
    """One failed poll of the revision (a 500, a dropped connection) ended the push, the build going on."""
    with failing(remote_ubiops, r"^GET .*/revisions/[^/]+$", times=3) as api:
        result = project.run("--output", "json", "push", "--skip-tests", env={"UBIOPS_API_HOST": api})
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["build_status"] == "success"
    assert "  build status unknown for now (" in result.stderr and "500: revision " in result.stderr
    assert result.stderr.count("build status unknown") == 1, "said once while it lasts"


def test_a_build_whose_status_cannot_be_learnt_is_waited_for_until_the_timeout(remote_ubiops, monkeypatch):
    """The deployer's client, through a proxy that answers every poll of the revision with a 500: it
    asks again until the timeout, says so once, and then stops saying the build may go on."""
    monkeypatch.setenv("UBIOPS_API_TOKEN", f"Token {TOKEN}")
    refused: list[str] = []
    said: list[str] = []
    with failing(remote_ubiops, r"^GET .*/revisions/", refused=refused) as url:
        monkeypatch.setenv("UBIOPS_API_HOST", url)
        api = Api(say=said.append)
        try:
            with pytest.raises(DeployerError) as error:
                wait_for_build(api, PROJECT, "d", "v1", "r1", 2.0, said.append)
        finally:
            api.close()
    assert len(refused) >= 2 and set(refused) == {f"GET /v2.1/projects/{PROJECT}/deployments/d/versions/v1/revisions/r1"}
    reason = "500: revision r1: injected failure"
    assert str(error.value) == (
        f"the build of d/v1 could not be followed: after 2 s UbiOps still does not say how it stands ({reason}); "
        "it may go on at UbiOps: follow it with `python -m deployer status`")
    assert said == [f"  build status unknown for now (0 s): {reason}; asking again"]


def test_a_widget_changed_in_the_spec_files_reaches_the_deployment_without_update_fields(project, remote_ubiops):
    """Widgets were left out of the comparison, so a changed one never reached the deployment."""
    spec = project.package / "ubiops_input_spec.json"
    spec.write_text(json.dumps([{"name": "x", "data_type": "int",
                                 "widget": {"type": "slider", "configuration": {"min": 0, "max": 10}}}]))
    project.push_json("--skip-tests", emulator=remote_ubiops)
    again = project.run("push", "--skip-tests", emulator=remote_ubiops)
    assert again.returncode == 0 and "updated the fields" not in again.stdout, "the same widget read back is no change"
    spec.write_text(json.dumps([{"name": "x", "data_type": "int",
                                 "widget": {"type": "slider", "configuration": {"min": 0, "max": 20}}}]))
    changed = project.run("push", "--skip-tests", emulator=remote_ubiops)
    assert changed.returncode == 0, changed.stderr
    assert f"updated the fields of deployment {project.deployment}: input widgets of x" in changed.stdout
    widget = remote_ubiops.sdk().deployments_get(PROJECT, project.deployment).input_fields[0].widget
    assert (widget.type, widget.configuration) == ("slider", {"min": "0", "max": "20"})
    spec.write_text(json.dumps([{"name": "x", "data_type": "double", "widget": {"type": "numberbox"}}]))
    refused = project.run("push", "--skip-tests", emulator=remote_ubiops)
    assert refused.returncode == 1 and "push with --update-fields" in refused.stderr, "a type still needs the flag"


def test_promote_takes_float_noise_but_not_an_output_that_differs_from_the_emulators(project, remote_ubiops):
    """A smoke answer that differed from the emulator's was warned of, and the version promoted all the
    same (exit 0); without --promote it still exited 0. Numbers within the comparison's tolerance (another
    machine's float path) still pass."""
    (project.package / "ubiops_output_spec.json").write_text(json.dumps([{"name": "y", "data_type": "double"},
                                                                        {"name": "tag", "data_type": "string"}]))
    project.configure(test_command='python -c "pass"')
    noisy = "import random\n\nclass Deployment:\n    def request(self, data):\n        " \
            "return {'y': data['x'] * (1 + random.random() * 1e-7), 'tag': 'same'}\n"
    (project.package / "deployment.py").write_text(noisy)
    project.push_json("--skip-tests", emulator=remote_ubiops)
    (project.package / "deployment.py").write_text(noisy + "# v2\n")
    noise = project.run("--output", "json", "push", "--promote", emulator=remote_ubiops)
    assert noise.returncode == 0, noise.stdout + noise.stderr
    assert "smoke request completed; output matches the emulator's" in noise.stderr
    assert (json.loads(noise.stdout)["version"], json.loads(noise.stdout)["promoted"]) == ("v2", True)

    (project.package / "deployment.py").write_text(
        "import uuid\n\nclass Deployment:\n    def request(self, data):\n        return {'y': 3.0, 'tag': uuid.uuid4().hex}\n")
    unpromoted = project.run("--output", "json", "push", emulator=remote_ubiops)
    assert unpromoted.returncode == 1, "a differing output exited 0 without --promote: " + unpromoted.stderr
    assert "smoke request completed, but its output differs from the emulator's:\n  tag: " in unpromoted.stderr
    assert json.loads(unpromoted.stdout)["version"] == "v3"
    result = project.run("--output", "json", "push", "--promote", emulator=remote_ubiops)
    assert result.returncode == 1, result.stdout + result.stderr
    summary = json.loads(result.stdout)
    assert (summary["version"], summary["promoted"], summary["smoke"]["status"]) == ("v4", False, "completed")
    assert [d.split(":")[0] for d in summary["smoke"]["differences"]] == ["tag"]
    assert summary["promotion_skipped"] == "the smoke request answered otherwise than the emulator"
    assert (f"NOT promoted: the smoke request to v4 answered otherwise than the emulator, so the default version of "
            f"{project.deployment} stays as it was and v4 is left available, not the default") in result.stderr
    assert remote_ubiops.sdk().deployments_get(PROJECT, project.deployment).default_version == "v2"


def test_refusals_come_before_the_emulator_tests(project, remote_ubiops):
    """The version cap without --prune, fields that differ without --update-fields and a --version that
    exists were refused only after the emulator tests had run, minutes later."""
    project.push_json("--skip-tests", emulator=remote_ubiops)
    ran = project.root / "tests-ran"
    tests = f"python -c \"open('{ran.name}', 'w')\""

    def refused(*flags: str) -> str:
        result = project.run("push", *flags, emulator=remote_ubiops)
        assert result.returncode == 1, result.stdout + result.stderr
        assert "ok   specs" in result.stdout, "after the static checks"
        assert "running" not in result.stdout and not ran.exists(), "before the tests"
        return result.stderr.strip()

    project.configure(max_versions=1, test_command=tests)
    assert refused().startswith(f"deployer: error: deployment {project.deployment} is at its cap of 1 versions")
    project.configure(test_command=tests)
    assert refused("--version", "v1") == (f"deployer: error: version v1 of {project.deployment} exists already; "
                                          "choose another --version")
    (project.package / "ubiops_output_spec.json").write_text(json.dumps([{"name": "y", "data_type": "double"}]))
    assert refused().endswith("push with --update-fields to change the deployment's fields")
    assert versions(remote_ubiops, project.deployment) == ["v1"]


def test_dry_run_with_promote_prints_the_sample_upload_the_smoke_request_and_the_promotion(project, remote_ubiops):
    """It stopped after the upload, though a push goes on to these calls."""
    (project.package / "deployment.py").write_text(
        "class Deployment:\n    def request(self, data):\n        return {'y': len(open(data['doc']).read())}\n")
    (project.package / "ubiops_input_spec.json").write_text(json.dumps([{"name": "doc", "data_type": "file"}]))
    (project.root / "sample.txt").write_text("the sample")
    project.configure(sample_input={"doc": "sample.txt"})
    result = project.run("push", "--dry-run", "--skip-tests", "--promote", emulator=remote_ubiops)
    assert result.returncode == 0, result.stdout + result.stderr
    digest = hashlib.sha256(b"the sample").hexdigest()[:16]
    deployment = project.deployment
    lines = [line for line in result.stdout.splitlines() if line.startswith("would  ")]
    assert lines[-4:] == [
        f"would  wait for the build: revisions_get('{PROJECT}', '{deployment}', <the new revision>, 'v1') until it "
        "ends (at most 1800 s)",
        f"would  files_upload('{PROJECT}', 'default', 'deployer/{digest}/sample.txt')",
        f"would  deployment_version_requests_create('{PROJECT}', '{deployment}', 'v1', "
        f"{{'doc': 'ubiops-file://default/deployer/{digest}/sample.txt'}})",
        f"would  deployments_update('{PROJECT}', '{deployment}', {{'default_version': 'v1'}})"]
    assert deployment not in [d.name for d in remote_ubiops.sdk().deployments_list(PROJECT)]
