"""The `ubiops_emulator` pytest fixture (`emulator.testing`) as a user's own test run uses it: a
pytest of its own, in a project folder of its own."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from harness import PACKAGES, eventually

WAITING_TEST = '''
import json, os, time

def test_waits(ubiops_emulator):
    instances = open(f"/proc/{ubiops_emulator.process.pid}/task/{ubiops_emulator.process.pid}/children").read().split()
    with open("started.json.partial", "w") as out:
        json.dump({"emulator": ubiops_emulator.process.pid, "instances": instances}, out)
    os.rename("started.json.partial", "started.json")
    time.sleep(120)
'''


def test_a_test_run_killed_outright_leaves_no_emulator_running(tmp_path):
    """Before, a SIGTERM'd pytest (a `timeout`, a cancelled CI job) skipped the fixture's teardown and
    left its emulator, and the instances under it, running for good."""
    (tmp_path / "test_waits.py").write_text(WAITING_TEST)
    run = subprocess.Popen([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_waits.py"],
                           cwd=tmp_path, env={**os.environ, "EMULATOR_PACKAGE": str(PACKAGES / "minimal")},
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        started = eventually(lambda: (tmp_path / "started.json").is_file() and (tmp_path / "started.json").read_text(),
                             "the test runs against its emulator", seconds=60)
        ids = json.loads(started)
        processes = [ids["emulator"], *map(int, ids["instances"])]
        run.send_signal(signal.SIGTERM)
        assert run.wait(30) == -signal.SIGTERM
        eventually(lambda: not any(Path(f"/proc/{pid}").exists() for pid in processes),
                   "the emulator and its instance ended with the test run", seconds=30)
    finally:
        if run.poll() is None:
            run.kill()


TWO_TESTS = '''
def test_one(ubiops_emulator):
    ubiops_emulator.request("x")

def test_two(ubiops_emulator):
    ubiops_emulator.request("y")
'''


def test_a_package_that_cannot_start_fails_each_test_with_the_reason_and_the_log(tmp_path):
    """Before, the fixture only waited for the server: the tests got a bare "503 Service Unavailable"
    (the reason in the body was dropped), and the log it pointed to went with the session."""
    (tmp_path / "test_two.py").write_text(TWO_TESTS)
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_two.py"], cwd=tmp_path,
                         env={**os.environ, "EMULATOR_PACKAGE": str(PACKAGES / "broken_init")},
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 1 and "2 errors" in run.stdout, run.stdout
    reason = "the deployment failed to start (FileNotFoundError: model1.pkl is missing from the package)"
    assert run.stdout.count(reason) >= 2 and "(the end of the emulator's log:)" in run.stdout, run.stdout


SEES_ITS_VARIABLES = '''
import ubiops


def test_sees_the_configured_variables(ubiops_emulator):
    names = ["LOG_LEVEL", "API_KEY", "NOT_SET_SECRET", "EXPORTED_HERE"]
    answer = ubiops_emulator.request({"names": names})
    assert answer["result"]["environ"] == {"LOG_LEVEL": "debug", "API_KEY": "s3cr3t-value", "NOT_SET_SECRET": None,
                                           "EXPORTED_HERE": None}, answer
    log = ubiops_emulator.log()
    assert ("NOT_SET_SECRET, named in [tool.deployer] secrets, is not set in this shell, so the emulator does not pass "
            "it on: the deployment sees it only if it is set through the API") in log and "s3cr3t-value" not in log
    ubiops_emulator.sdk().project_environment_variables_create(ubiops_emulator.project, ubiops.EnvironmentVariableCreate(
        name="NOT_SET_SECRET", value="from-the-api", secret=True))
    answer = ubiops_emulator.request({"names": ["NOT_SET_SECRET"]})
    assert answer["result"]["environ"] == {"NOT_SET_SECRET": "from-the-api"}, answer
'''


def test_the_configured_variables_reach_the_package_as_deployer_check_sets_them(tmp_path):
    """`[tool.deployer]`'s variables, and the secrets the shell holds, reach its own package under a
    plain pytest (and `make serve`), as `deployer check` and `push` set them; nothing else of the shell
    does (before, every exported variable did, and the configured plain ones never)."""
    shutil.copytree(PACKAGES / "environment", tmp_path / "pkg")
    (tmp_path / "pyproject.toml").write_text(
        '[tool.deployer]\ndeployment = "variables"\npackage = "pkg"\n'
        'environment_variables = { LOG_LEVEL = "debug" }\nsecrets = ["API_KEY", "NOT_SET_SECRET"]\n')
    (tmp_path / "test_sees.py").write_text(SEES_ITS_VARIABLES)
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("EMULATOR_", "UBIOPS_"))}
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_sees.py"], cwd=tmp_path,
                         env={**environment, "API_KEY": "s3cr3t-value", "EXPORTED_HERE": "x"},
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr


TOKEN_TEST = '''
import httpx

def test_its_emulator_requires_a_token(ubiops_emulator):
    assert ubiops_emulator.token
    assert httpx.post(ubiops_emulator.requests_url(), content=b"x", timeout=30).status_code == 401
    assert ubiops_emulator.request("x")["status"] == "completed"
'''


def test_the_fixture_s_own_emulator_requires_a_token(tmp_path):
    """Without one, any user of the machine could upload a package to it while the tests ran, and run code
    as the developer."""
    (tmp_path / "test_token.py").write_text(TOKEN_TEST)
    env = {k: v for k, v in os.environ.items() if k != "EMULATOR_TOKEN"}
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_token.py"],
                         cwd=tmp_path, env={**env, "EMULATOR_PACKAGE": str(PACKAGES / "minimal")},
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr


SHOWS_ITS_HEADERS = '''
import httpx

def test_sends_the_headers(ubiops_emulator):
    assert httpx.get(ubiops_emulator.api + "/projects/demo/nothing", headers=ubiops_emulator.headers).status_code == 200

def test_sends_a_copy_of_them(ubiops_emulator):
    headers = {**ubiops_emulator.headers, "Accept": "application/json"}
    assert httpx.get(ubiops_emulator.api + "/projects/demo/nothing", headers=headers).status_code == 200
'''


def test_a_failing_test_shows_the_headers_it_sent_without_the_token(tmp_path):
    """pytest's report of a failing assertion shows the arguments of the call in it: `headers=` showed
    an exported $EMULATOR_TOKEN (as the README advises on a shared machine) in clear, for CI to keep."""
    token = "exported-token-never-shown-3b9d"
    (tmp_path / "test_headers.py").write_text(SHOWS_ITS_HEADERS)
    run = subprocess.run([sys.executable, "-m", "pytest", "-vv", "-p", "no:cacheprovider", "test_headers.py"],
                         cwd=tmp_path, env={**os.environ, "EMULATOR_PACKAGE": str(PACKAGES / "minimal"),
                                            "EMULATOR_TOKEN": token},
                         capture_output=True, text=True, timeout=120)
    output = run.stdout + run.stderr
    assert run.returncode == 1 and "2 failed" in run.stdout, output
    assert "headers={'Authorization': '***'})" in output and "headers={'Authorization': '***', 'Accept'" in output, output
    assert token not in output, output


LEAKING_INIT = '''
import os, sys
from urllib.parse import quote


class Deployment:
    def __init__(self, base_directory, context):
        key = os.environ["API_KEY"]
        print(f"connecting with {key}")
        print(f"GET https://api.example.com/v1?key={quote(key, safe='')}", file=sys.stderr)
        raise RuntimeError(f"the key {key!r} was refused")

    def request(self, data):
        return data
'''


def test_a_package_that_prints_its_secret_fails_without_showing_it(tmp_path):
    """A plain pytest of a package whose `__init__` printed a configured secret and failed with it in
    its message showed the value in clear three times (the reason, the log's end, the log); now masked."""
    secret = "s3cr3t value/with+specials"
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "deployment.py").write_text(LEAKING_INIT)
    (tmp_path / "pyproject.toml").write_text('[tool.deployer]\ndeployment = "leaking"\npackage = "pkg"\n'
                                             'secrets = ["API_KEY"]\n')
    (tmp_path / "test_two.py").write_text(TWO_TESTS)
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("EMULATOR_", "UBIOPS_"))}
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_two.py"], cwd=tmp_path,
                         env={**environment, "API_KEY": secret}, capture_output=True, text=True, timeout=300)
    output = run.stdout + run.stderr
    assert run.returncode == 1 and "2 errors" in run.stdout, output
    assert "the key '***' was refused" in output and "connecting with ***" in output, output
    assert "key=***" in output and "(the end of the emulator's log:)" in output, output
    assert secret not in output and "s3cr3t%20value" not in output, output
