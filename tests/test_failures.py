"""Deployments that fail, crash, hang or cannot start: each request gets a clear answer, the
instance is replaced, and the server keeps serving."""

from __future__ import annotations

import concurrent.futures
import os
import re
import shutil
import subprocess
import sys

import httpx
import pytest
import ubiops
from harness import (
    DEPLOYMENT,
    PACKAGES,
    PROJECT,
    ROOT,
    eventually,
    free_port,
    metric_values,
    package_folder,
    start_emulator,
    wait_for_log,
    zip_bytes,
)
from ubiops.utils.exceptions import StatusError

from contract.text import MESSAGE_LIMIT


def test_exception_in_request_is_a_failed_request_with_ubiops_message(emulators):
    failing = emulators("failing")
    response = failing.sdk().deployment_requests_create(PROJECT, DEPLOYMENT, data={"public": False})
    assert (response.status, response.success, response.result) == ("failed", False, None)
    assert response.error_message == "An exception occurred in the request. See the logs for details."
    log = wait_for_log(failing, "internal detail the caller should not see")
    assert f"[request {response.id}] Traceback" in log, "the traceback is in the log, tagged with the request"


def test_public_error_message_reaches_the_caller(emulators):
    failing = emulators("failing")
    response = failing.sdk().deployment_requests_create(PROJECT, DEPLOYMENT, data={"public": True})
    assert response.status == "failed" and response.error_message == "The portrait is too dark to profile"


@pytest.mark.parametrize("mode, reason", [
    ("sys_exit", "exit code 3"),
    ("os_exit", "exit code 4"),
    ("segfault", "killed by signal SIGSEGV"),
])
def test_crashing_instance_fails_its_request_and_is_replaced(emulators, mode, reason):
    crashing = emulators("crashing")
    api = crashing.sdk()
    before = api.deployment_requests_create(PROJECT, DEPLOYMENT, data={"mode": "ok"}).result["pid"]
    crashed = api.deployment_requests_create(PROJECT, DEPLOYMENT, data={"mode": mode})
    assert crashed.status == "failed"
    assert crashed.error_message == f"The instance stopped ({reason}) while handling the request; it is being restarted"
    after = api.deployment_requests_create(PROJECT, DEPLOYMENT, data={"mode": "ok"})
    assert after.status == "completed" and after.result["pid"] != before


def test_an_instance_that_cannot_be_restarted_makes_the_version_unavailable_and_no_request_waits(tmp_path):
    """Any error restarting an instance (here the revision's copy of the package, which it runs in,
    moved away) ended the version's instances without a word: the version stayed available, and batch
    requests waited for ever."""
    emulator = start_emulator("crashing", tmp_path)
    try:
        api = emulator.sdk()
        assert api.deployment_requests_create(PROJECT, DEPLOYMENT, data={"mode": "ok"}).status == "completed"
        revision = api.deployment_versions_get(PROJECT, DEPLOYMENT, "v1").active_revision
        (emulator.data_dir / "builds" / revision).rename(tmp_path / "moved")
        crashed = api.deployment_requests_create(PROJECT, DEPLOYMENT, data={"mode": "os_exit"})
        assert crashed.status == "failed" and "exit code 4" in crashed.error_message
        eventually(lambda: api.deployment_versions_get(PROJECT, DEPLOYMENT, "v1").status == "unavailable",
                   "the version is unavailable")
        with pytest.raises(ubiops.ApiException) as refused:
            api.batch_deployment_requests_create(PROJECT, DEPLOYMENT, data=[{"mode": "ok"}])
        assert refused.value.status == 503 and "failed to restart (FileNotFoundError: " in refused.value.body
    finally:
        emulator.stop()


def test_an_instance_whose_restart_fails_is_retried_while_the_other_serves(emulators, tmp_path):
    """One failed restart made the version unavailable for good: every request was refused with 503 and
    /readyz said unavailable, the other instance running and the cause gone."""
    flaky = emulators("flaky_init", "--instances", "2", "--env", f"FLAG_FOLDER={tmp_path}")
    api = flaky.sdk()
    running = lambda: [i for i in api.instances_list(PROJECT, DEPLOYMENT, "v1").results if i.status == "running"]  # noqa: E731
    eventually(lambda: len(running()) == 2, "both instances run")
    crashed = api.deployment_requests_create(PROJECT, DEPLOYMENT, data="crash")
    assert crashed.error_message == "The instance stopped (exit code 5) while handling the request; it is being restarted"
    wait_for_log(flaky, "could not restart: RuntimeError: a transient init failure; trying again in 1 s")
    assert api.deployment_requests_create(PROJECT, DEPLOYMENT, data="served").status == "completed"
    assert httpx.get(f"{flaky.url}/readyz").json() == {"status": "ready"}
    assert len(running()) == 1 and len(api.instances_list(PROJECT, DEPLOYMENT, "v1").results) == 2
    (tmp_path / "fail").unlink()
    eventually(lambda: len(running()) == 2, "the failed instance restarts once the cause is gone")


def test_an_instance_that_keeps_ending_soon_after_it_started_is_restarted_ever_later(emulators):
    """An `__init__` leaving a thread that ends the process 0.3 s later was restarted at once, for ever (224 times
    in 75 s), its version available throughout. From its second such loss in a row, its restart waits as a failed
    start's does (RETRY_SECONDS), the version unavailable meanwhile, saying why, and requests are refused."""
    looping = emulators("crashing", "--env", "CRASH_AFTER_INIT=0.3")
    api = looping.sdk()
    cause = "the instance stopped within 10 s of becoming ready"
    wait_for_log(looping, f"could not restart: {cause}, 2 times in a row; trying again in 1 s", seconds=60)
    wait_for_log(looping, f"could not restart: {cause}, 3 times in a row; trying again in 2 s", seconds=60)
    (instance,) = api.instances_list(PROJECT, DEPLOYMENT, "v1").results
    events = [e.description for e in api.instance_events_list(PROJECT, DEPLOYMENT, instance.id, "v1").results]
    assert f"Instance lost (start): The deployment failed to restart: {cause}, 2 times in a row; retrying in 1 s" in events
    assert "Instance lost (crash): The instance stopped (exit code 7) while idle; it is being restarted" in events

    def refused() -> str | None:
        """The 503 of a request sent while the instance waits (one sent while it runs is answered)."""
        try:
            api.deployment_requests_create(PROJECT, DEPLOYMENT, data={"mode": "ok"})
        except ubiops.ApiException as exc:
            assert exc.status == 503, exc.body
            return str(exc.body)
        return None

    assert f"failed to restart ({cause}, " in eventually(refused, "a request is refused while the instance waits", seconds=60)
    eventually(lambda: api.deployment_versions_get(PROJECT, DEPLOYMENT, "v1").status == "unavailable",
               "the version is unavailable while the instance waits", seconds=60)


def test_request_past_its_timeout_fails_and_the_instance_is_replaced(emulators):
    crashing = emulators("crashing")
    api = crashing.sdk()
    before = api.deployment_requests_create(PROJECT, DEPLOYMENT, data={"mode": "ok"}).result["pid"]
    slow = api.deployment_requests_create(PROJECT, DEPLOYMENT, data={"mode": "sleep 600"}, timeout=10)
    assert slow.status == "failed" and slow.timeout == 10
    assert slow.error_message == "The request timed out after 10 seconds; its instance is being restarted"
    after = api.deployment_requests_create(PROJECT, DEPLOYMENT, data={"mode": "ok"})
    assert after.status == "completed" and after.result["pid"] != before
    # The instance's own lines said nothing of the timeout, and the request's end had no instance_id.
    (instance,) = api.instances_list(PROJECT, DEPLOYMENT, "v1").results
    ended, stopping = eventually(lambda: (lines := api.logs_list(PROJECT, query=f'| deployment_request_id="{slow.id}"'))
                                 and len(lines) == 2 and lines, "the request's end and, before it, the instance's line")
    assert (stopping.log, stopping.metadata.system) == (f"[{DEPLOYMENT}/v1 instance 1] request {slow.id} timed out; stopping it", True)
    assert ended.log.startswith(f"{DEPLOYMENT}/v1 request {slow.id} failed in ")
    assert stopping.metadata.instance_id == ended.metadata.instance_id == instance.id


def test_timeout_outside_ubiops_range_is_refused(emulators):
    crashing = emulators("crashing")
    for timeout in (9, 3601):
        with pytest.raises(ubiops.ApiException) as error:
            crashing.sdk().deployment_requests_create(PROJECT, DEPLOYMENT, data={"mode": "ok"}, timeout=timeout)
        assert error.value.status == 400 and "timeout" in error.value.body


def test_instances_are_separate_processes_sharing_one_queue(emulators):
    crashing = emulators("crashing", "--instances", "2")
    with httpx.Client(timeout=30) as client, concurrent.futures.ThreadPoolExecutor(4) as pool:
        replies = list(pool.map(
            lambda _: client.post(crashing.requests_url(), json={"mode": "sleep 1"}).json(), range(4)
        ))
    assert all(r["status"] == "completed" for r in replies)
    assert len({r["result"]["pid"] for r in replies}) == 2


def test_init_failure_makes_the_version_unavailable_with_a_clear_error(emulators):
    broken = emulators("broken_init")
    api = broken.sdk()
    log = wait_for_log(broken, "cannot start: ")
    assert "FileNotFoundError: model1.pkl is missing from the package" in log and "Traceback" in log
    with pytest.raises(ubiops.ApiException) as error:
        api.deployment_requests_create(PROJECT, DEPLOYMENT, data="anything")
    assert error.value.status == 503
    assert "failed to start (FileNotFoundError: model1.pkl is missing from the package)" in error.value.body
    assert api.deployment_versions_get(PROJECT, DEPLOYMENT, "v1").status == "unavailable"
    assert api.service_status().status == "ok", "the server itself is still up"


@pytest.mark.parametrize("code, told", [
    ("class Deploymnet:\n    pass\n", ["AttributeError: the deployment file defines no class called 'Deployment' (the classes it defines: Deploymnet)"]),
    ("import no_such_module_for_the_test\n",
     ["Traceback (most recent call last):", '  File "deployment.py", line 1, in <module>', "    import no_such_module_for_the_test",
      "ModuleNotFoundError: No module named 'no_such_module_for_the_test'"]),
    ("class Deployment:\n    def __init__(self):\n        self.load()\n\n    def load(self):\n        raise RuntimeError('no model')\n",
     ["Traceback (most recent call last):", '  File "deployment.py", line 3, in __init__', "    self.load()",
      '  File "deployment.py", line 6, in load', "    raise RuntimeError('no model')", "RuntimeError: no model"]),
], ids=["class-name-typo", "import-error", "init-raises"])
def test_a_start_failures_traceback_begins_at_the_deployments_own_code(tmp_path, code, told):
    """Before, it began with the emulator's own frames (the bootstrap, worker.py, loader.py, importlib's), and
    the loader's own error (no class called 'Deployment') came with a traceback of those alone."""
    emulator = start_emulator(package_folder(tmp_path / "package", code, "[]", "[]"), tmp_path)
    try:
        wait_for_log(emulator, "cannot start: ")
        log = wait_for_log(emulator, told[-1])  # the instance's stderr reaches the log on its own
    finally:
        emulator.stop()
    tag = f"[{DEPLOYMENT}/v1 instance 1] "
    lines = [re.sub(r'File ".*/deployment.py"', 'File "deployment.py"', line.partition(tag)[2])
             for line in log.splitlines() if tag in line]
    assert lines[0].startswith("starting (pid ") and lines[1:1 + len(told)] == told, lines


def test_a_long_start_failure_of_the_package_version_is_read_by_the_sdk(tmp_path):
    """The --package version's revision kept the whole reason: past 1024 characters the SDK refused it,
    and revisions_list and wait_for_deployment_version raised instead of saying why."""
    package = tmp_path / "long_failure"
    shutil.copytree(PACKAGES / "broken_init", package)
    (package / "deployment.py").write_text("class Deployment:\n    def __init__(self, base_directory, context):\n"
                                           "        raise RuntimeError('x ' * 600)\n")
    emulator = start_emulator(package, tmp_path)
    try:
        api = emulator.sdk()
        (revision,) = eventually(lambda: [r for r in api.revisions_list(PROJECT, DEPLOYMENT, "v1") if r.status == "failed"],
                                 "the revision failed")
        assert len(revision.error_message) == 1024 and "RuntimeError: x x x" in revision.error_message
        with pytest.raises(StatusError, match="RuntimeError: x x x"):
            ubiops.utils.wait_for_deployment_version(api.api_client, PROJECT, DEPLOYMENT, "v1", revision_id=revision.id)
    finally:
        emulator.stop()


def test_a_huge_start_failure_is_logged_cut_short(tmp_path):
    """An `__init__` raising with a 45 MB message was logged whole twice (the instances' and the build's
    line), and the log store's retention then dropped every earlier line of the project's. What the
    deployment printed (its traceback) is relayed in pieces, as any long line it prints."""
    emulator = start_emulator("plain", tmp_path)
    try:
        api = emulator.sdk()
        archive = tmp_path / "huge.zip"
        archive.write_bytes(zip_bytes({"deployment_package/deployment.py": (
            b"class Deployment:\n    def __init__(self):\n        raise RuntimeError('x' * 2_000_000)\n")}))
        revision = api.revisions_file_upload(PROJECT, DEPLOYMENT, "v1", file=str(archive)).revision
        with pytest.raises(StatusError, match="RuntimeError: xxx"):
            ubiops.utils.wait_for_deployment_version(api.api_client, PROJECT, DEPLOYMENT, "v1", revision_id=revision,
                                                     timeout=120, quiet=True)
        failed = wait_for_log(emulator, f"build of {DEPLOYMENT}/v1 revision {revision} failed")
    finally:
        emulator.stop()
    lines = failed.splitlines()
    assert max(map(len, lines)) < 2 * 64 * 1024 + 1000, "no line longer than the relay's longest piece"
    (built,) = [line for line in lines if f"revision {revision} failed" in line]
    assert "characters in all)" in built and len(built) < MESSAGE_LIMIT + 1000


def test_a_deployment_whose_init_hangs_fails_to_start_and_answers_the_batch_request_waiting_for_it(emulators,
                                                                                                     tmp_path):
    """A batch request's timeout only starts once an instance takes it: before `--start-timeout`, it
    waited for ever for an `__init__` that never returned."""
    (tmp_path / "hang").touch()
    hung = emulators("hanging_init", "--start-timeout", "5", "--env", f"HANG_FOLDER={tmp_path}")
    api = hung.sdk()
    [waiting] = api.batch_deployment_requests_create(PROJECT, DEPLOYMENT, data=["anything"])
    ended = eventually(lambda: (r := api.deployment_requests_get(PROJECT, DEPLOYMENT, waiting.id)).status == "failed" and r,
                       "the batch request failed", seconds=30)
    expected = (f"{DEPLOYMENT}/v1 is unavailable: the deployment failed to start (Deployment.__init__ did not return "
                "within 5 seconds; the instance was stopped); see the emulator log")
    assert ended.error_message == expected
    assert httpx.get(f"{hung.url}/readyz").json()["versions"][0]["error"] == expected


def test_a_deployment_whose_import_hangs_is_said_to_hang_in_its_import_not_in_init(tmp_path):
    """A module that hangs at import (a download at module level) was said to hang in `__init__`, which never ran."""
    code = "import time\n\ntime.sleep(10 ** 6)\n\n\nclass Deployment:\n    def request(self, data):\n        return data\n"
    emulator = start_emulator(package_folder(tmp_path / "package", code, "[]", "[]"), tmp_path, "--start-timeout", "2")
    try:
        wait_for_log(emulator, "cannot start: ", seconds=30)
        status = httpx.get(f"{emulator.url}/readyz").json()["versions"][0]["error"]
    finally:
        emulator.stop()
    assert status == (f"{DEPLOYMENT}/v1 is unavailable: the deployment failed to start (the import of deployment.py did not "
                      "end within 2 seconds; the instance was stopped); see the emulator log")


@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf"])
def test_a_start_timeout_that_is_not_a_positive_number_of_seconds_is_refused(tmp_path, value):
    run = subprocess.run([sys.executable, "-m", "emulator", "--package", "tests/packages/plain", "--port", str(free_port()),
                          "--data-dir", str(tmp_path / "data"), "--start-timeout", value], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and "--start-timeout must be a number of seconds more than 0" in run.stderr


@pytest.mark.parametrize("mode, message", [
    ("not_a_dict", "The output type is structured, so the output must be an object with fields value, picture; got an array"),
    ("missing_field", "Missing output field 'picture' of type file"),
    ("wrong_type", "Output field 'value' must be of type double, but got a string"),
    ("not_json", "The deployment's output cannot be sent as JSON: Object of type object is not JSON serializable"),
    ("nan", "The deployment's output cannot be sent as JSON: Out of range float values are not JSON compliant"),
    # completed, answered as a 401-digit number
    ("huge_int", "Output field 'value' must be of type double, but the number is beyond the range of a double"),
    ("file_beside_a_wrong_type", "Output field 'value' must be of type double, but got a string"),
    ("file_beside_not_json", "The deployment's output cannot be sent as JSON: Object of type object is not JSON serializable"),
    ("missing_file", "Output field 'picture' must be the path of an existing file; no file at 'no-such-file.png'"),
    ("lone_surrogate", "The deployment's output cannot be sent as JSON: 'utf-8' codec can't encode character '\\ud800'"),
    ("file_python_could_not_decode", "The deployment's output cannot be sent as JSON: 'utf-8' codec can't encode character '\\udcff'"),
])
def test_output_that_breaks_the_spec_fails_the_request(emulators, mode, message):
    bad = emulators("bad_output")
    response = bad.sdk().deployment_requests_create(PROJECT, DEPLOYMENT, data={"mode": mode})
    assert response.status == "failed" and response.result is None
    assert response.error_message.startswith(message), response.error_message
    assert bad.sdk().files_list(PROJECT, "default").files == [], "no output file of a failed request is kept"


def test_an_output_nested_deeper_than_an_input_may_be_fails_the_request(tmp_path):
    """It completed, and its direct answer was a 500 ("Maximum serialization depth exceeded"). One nested
    past Python's recursion limit crashed the worker as it encoded its reply, and the instance restarted."""
    package = package_folder(
        tmp_path / "deep_output",
        "class Deployment:\n    def __init__(self, base_directory, context):\n        pass\n\n"
        "    def request(self, data):\n        tree = {}\n        for _ in range(data['levels']):\n"
        "            tree = {'child': tree}\n        return {'tree': tree}\n",
        '[{"name": "levels", "data_type": "int"}]', '[{"name": "tree", "data_type": "dict"}]')
    emulator = start_emulator(package, tmp_path)
    try:
        api = emulator.sdk()
        assert api.deployment_requests_create(PROJECT, DEPLOYMENT, data={"levels": 90}).status == "completed"
        deep = api.deployment_requests_create(PROJECT, DEPLOYMENT, data={"levels": 400})
        assert (deep.status, deep.error_message) == ("failed", "The output nests objects and arrays deeper than 100 levels")
        deeper = api.deployment_requests_create(PROJECT, DEPLOYMENT, data={"levels": 1500})  # past Python's recursion limit
        assert deeper.status == "failed"
        assert deeper.error_message.startswith("The deployment's output cannot be sent as JSON: maximum recursion depth"), deeper.error_message
        assert api.deployment_requests_create(PROJECT, DEPLOYMENT, data={"levels": 90}).status == "completed"
        assert "stopped" not in emulator.log() and emulator.log().count("starting (pid") == 1, "the instance was kept"
    finally:
        emulator.stop()


def test_an_error_message_naming_an_undecodable_file_reaches_the_caller_from_the_same_instance(emulators):
    """A lone surrogate in a public error message (a file name os.listdir could not decode) crashed the
    worker as it sent the message: the request failed as a lost instance, which was restarted."""
    bad = emulators("bad_output")
    response = bad.sdk().deployment_requests_create(PROJECT, DEPLOYMENT, data={"mode": "error_naming_an_undecodable_file"})
    assert response.status == "failed" and response.error_message == "no such file: photo-\\udcff.jpg"
    assert "stopped" not in bad.log() and bad.log().count("starting (pid") == 1


def test_an_output_file_that_cannot_be_kept_fails_its_request_and_keeps_the_instance(tmp_path):
    """A real failed write (the instance may not grow files past 4 KB, as on a full disk): before, the
    worker died copying the output file, the request failed as a crash and the instance restarted."""
    emulator = start_emulator("bad_output", tmp_path)
    try:
        api = emulator.sdk()
        failed = api.deployment_requests_create(PROJECT, DEPLOYMENT, data={"mode": "file_past_a_full_disk"})
        assert (failed.status, failed.error_message) == ("failed", "The output file big.png could not be kept: File too large")
        assert api.deployment_requests_create(PROJECT, DEPLOYMENT, data={"mode": "nulls"}).status == "completed"
        assert "stopped" not in emulator.log() and emulator.log().count("starting (pid") == 1
        assert api.files_list(PROJECT, "default").files == [], "nothing half-copied is left"
    finally:
        emulator.stop()


def test_an_output_file_named_with_a_newline_is_kept_under_a_name_every_call_reaches(emulators):
    """Kept as `output/two\nlines.png`, it was listed, but files_get, its download URL and files_delete
    answered a bare 404 "Not Found": no route matched a newline."""
    bad = emulators("bad_output")
    api = bad.sdk()
    response = api.deployment_requests_create(PROJECT, DEPLOYMENT, data={"mode": "file_named_with_a_newline"})
    assert response.status == "completed", response.error_message
    name = f"deployment_requests/{response.id}/output/two_lines.png"
    assert response.result["picture"] == f"ubiops-file://default/{name}"
    assert httpx.get(api.files_download(PROJECT, "default", name).url).content == b"kept"
    api.files_delete(PROJECT, "default", name)  # the bucket stays empty for the other tests of this package
    assert api.files_list(PROJECT, "default").files == []


def test_an_output_file_named_with_a_backslash_is_kept_under_a_name_every_call_reaches(emulators):
    """Kept as `output/a\\b.png`, it was listed, but files_get, its download URL and files_delete
    answered 400 "holds a backslash"."""
    api = emulators("bad_output").sdk()
    response = api.deployment_requests_create(PROJECT, DEPLOYMENT, data={"mode": "file_named_with_a_backslash"})
    assert response.status == "completed", response.error_message
    name = f"deployment_requests/{response.id}/output/a_b.png"
    assert response.result["picture"] == f"ubiops-file://default/{name}"
    assert api.files_get(PROJECT, "default", name).file == name
    assert httpx.get(api.files_download(PROJECT, "default", name).url).content == b"kept"
    api.files_delete(PROJECT, "default", name)  # the bucket stays empty for the other tests of this package
    assert api.files_list(PROJECT, "default").files == []


def test_null_is_accepted_for_every_output_field(emulators):
    response = emulators("bad_output").sdk().deployment_requests_create(PROJECT, DEPLOYMENT, data={"mode": "nulls"})
    assert response.status == "completed" and response.result == {"value": None, "picture": None}


def test_instance_growing_past_its_memory_limit_is_replaced_and_the_server_stays_flat(emulators):
    leaky = emulators("leaky", "--instance-memory-mb", "400")
    api = leaky.sdk()
    server_before = resident_mb(leaky.process.pid)
    outcomes = [api.deployment_requests_create(PROJECT, DEPLOYMENT, data="leak") for _ in range(9)]
    failed = [o for o in outcomes if o.status == "failed"]
    assert failed, "a worker holding 9 x 64 MB must pass a 400 MB limit"
    assert failed[0].error_message == ("The instance used more than 400 MB of memory while handling the request "
                                       "and was stopped; it is being restarted")
    pids = {o.result.split()[0] for o in outcomes if o.status == "completed"}
    assert len(pids) >= 2, "the next request ran on a fresh instance"
    assert resident_mb(leaky.process.pid) < server_before + 30, "the emulator's own memory stays flat"
    losses = metric_values(httpx.get(f"{leaky.url}/metrics").text)
    assert losses("ubiops_emulator_instance_crashes_total", project=PROJECT, deployment=DEPLOYMENT, version="v1", reason="memory") == len(failed)


@pytest.mark.parametrize("how", ["fork", "subprocess", "hold"])
def test_the_memory_limit_counts_the_processes_an_instance_starts(emulators, how):
    """A container's limit counts every process of the deployment (a data loader's workers, ffmpeg, a model
    server): 200 MB allocated in a process the worker started passed a 128 MB limit here, the request completed
    (`hold`: timed out), and the deployment ran out of memory on UbiOps. A child that ended is seen in the peak
    the reply carries; one still running, by the server's look at the worker's process group."""
    limited = emulators("child_memory", "--instance-memory-mb", "128")
    api = limited.sdk()
    response = api.deployment_requests_create(PROJECT, DEPLOYMENT, data=how, timeout=60)
    assert (response.status, response.error_message) == ("failed", "The instance used more than 128 MB of memory while "
                                                         "handling the request and was stopped; it is being restarted")
    after = api.deployment_requests_create(PROJECT, DEPLOYMENT, data="small")
    assert (after.status, after.result) == ("completed", "small: done"), "a new instance took the next request"


def resident_mb(pid: int) -> float:
    with open(f"/proc/{pid}/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1024**2
