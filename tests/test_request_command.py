"""`python -m emulator request`: one request from the command line, on a project of its own (a
`[tool.deployer]` naming a small package), with or without an emulator already running."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import ubiops
from harness import ROOT, free_port, zip_bytes

from emulator.launcher import running_emulator

DEPLOYMENT_PY = '''import os, shutil, tempfile

class Deployment:
    def __init__(self):
        self.scratch = tempfile.mkdtemp()

    def request(self, data):
        if data["scale"] < 0:
            raise ValueError("negative")
        thumb = os.path.join(self.scratch, "thumb.bin")
        shutil.copyfile(data["photo"], thumb)
        return {"thumb": thumb, "size": os.path.getsize(data["photo"]), "scale": data["scale"] * 2}
'''
INPUTS = [{"name": "photo", "data_type": "file"},
          {"name": "scale", "data_type": "double", "widget": {"type": "numberbox", "configuration": {"default": 1.5}}}]
OUTPUTS = [{"name": "thumb", "data_type": "file"}, {"name": "size", "data_type": "int"}, {"name": "scale", "data_type": "double"}]


@pytest.fixture
def project(tmp_path) -> Path:
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "deployment.py").write_text(DEPLOYMENT_PY)
    (package / "ubiops_input_spec.json").write_text(json.dumps(INPUTS))
    (package / "ubiops_output_spec.json").write_text(json.dumps(OUTPUTS))
    (tmp_path / "pyproject.toml").write_text('[tool.deployer]\nproject = "cli-project"\ndeployment = "thumbs"\npackage = "pkg"\n')
    (tmp_path / "inputs").mkdir()
    (tmp_path / "inputs" / "photo.bin").write_bytes(b"\x00\x01" * 500)
    return tmp_path


def request(project: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "emulator", "request", "--url", f"http://127.0.0.1:{free_port()}", *args],
                          cwd=project, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)})


def test_a_file_gives_a_table_and_the_output_file_beside_it(project):
    run = request(project, "inputs/photo.bin")
    assert run.returncode == 0, run.stderr
    rows = dict(line.split(None, 1) for line in run.stdout.splitlines())
    assert (rows["status"], rows["size"], rows["scale"]) == ("completed", "1000", "3.0"), "scale took its widget's default"
    saved = Path(rows["thumb"])
    assert saved.parent == project / "inputs" and saved.read_bytes() == (project / "inputs" / "photo.bin").read_bytes()
    assert "starting the emulator on pkg" in run.stderr


def test_fields_and_json_output(project):
    run = request(project, "-i", "photo=@inputs/photo.bin", "-i", "scale=2", "--output", "json")
    answer = json.loads(run.stdout)
    assert (answer["status"], answer["result"]["scale"], answer["deployment"]) == ("completed", 4.0, "thumbs")


def test_output_into_a_pipe_closed_early_ends_without_a_traceback(project):
    """`emulator request … | head -c 400`: the reader went away before the answer was printed; before, a
    BrokenPipeError traceback ended the command."""
    run = subprocess.Popen([sys.executable, "-m", "emulator", "request", "--url", f"http://127.0.0.1:{free_port()}",
                            "inputs/photo.bin", "--output", "json"], cwd=project, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)})
    assert run.stdout is not None and run.stderr is not None
    run.stdout.close()  # as `head` does once it has read what it wanted
    errors = run.stderr.read().decode()
    assert run.wait(120) == 0 and "Traceback" not in errors, errors


def test_a_running_emulator_is_used(project):
    with running_emulator(project / "pkg", project="cli-project", deployment="thumbs", cwd=project) as emulator:
        run = subprocess.run([sys.executable, "-m", "emulator", "request", "--url", emulator.url, "inputs/photo.bin"],
                             cwd=project, capture_output=True, text=True, timeout=120, env={"PYTHONPATH": str(ROOT)})
        listed = emulator.sdk().deployment_requests_list("cli-project", "thumbs")
    assert run.returncode == 0 and "starting" not in run.stderr, run.stderr
    assert [r.id for r in listed] == [dict(line.split(None, 1) for line in run.stdout.splitlines())["request"]]


def test_a_running_emulator_whose_default_is_another_version_gets_the_request_at_the_packages(project):
    """Before, with v2 the default (kept from a `deployer push --promote` to the emulator), the request went to
    v2, whose code need not be the package's (here it is a copy of it: only the histories tell them apart)."""
    with running_emulator(project / "pkg", project="cli-project", deployment="thumbs", cwd=project) as emulator:
        api = emulator.sdk()
        api.deployment_versions_create("cli-project", "thumbs", ubiops.DeploymentVersionCreate(version="v2"))
        package = project / "v2.zip"
        package.write_bytes(zip_bytes({f"pkg/{f.name}": f.read_bytes() for f in (project / "pkg").iterdir()}))
        revision = api.revisions_file_upload("cli-project", "thumbs", "v2", file=str(package)).revision
        ubiops.utils.wait_for_deployment_version(api.api_client, "cli-project", "thumbs", "v2", revision_id=revision,
                                                 timeout=120, quiet=True)
        api.deployments_update("cli-project", "thumbs", ubiops.DeploymentUpdate(default_version="v2"))
        run = subprocess.run([sys.executable, "-m", "emulator", "request", "--url", emulator.url, "inputs/photo.bin"],
                             cwd=project, capture_output=True, text=True, timeout=120, env={"PYTHONPATH": str(ROOT)})
        listed = api.deployment_version_requests_list("cli-project", "thumbs", "v1")
    assert run.returncode == 0, run.stderr
    assert "sending to version v1, the package's: the deployment's default is v2" in run.stderr
    assert [r.id for r in listed] == [dict(line.split(None, 1) for line in run.stdout.splitlines())["request"]]


def test_a_running_emulator_with_a_token_is_used_with_emulator_token_and_never_replaced(project):
    """Without its token, another emulator would have answered, lacking the running one's variables and history."""
    def run(token: str | None) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "emulator", "request", "--url", emulator.url, "inputs/photo.bin"],
                              cwd=project, capture_output=True, text=True, timeout=120,
                              env={"PYTHONPATH": str(ROOT), **({"EMULATOR_TOKEN": token} if token else {})})

    with running_emulator(project / "pkg", project="cli-project", deployment="thumbs", cwd=project,
                          token="tok-local-1234") as emulator:
        missing, wrong, right = run(None), run("tok-wrong-1234"), run("tok-local-1234")
        listed = emulator.sdk().deployment_requests_list("cli-project", "thumbs")
    assert right.returncode == 0 and "starting" not in right.stderr, right.stderr
    assert [r.id for r in listed] == [dict(line.split(None, 1) for line in right.stdout.splitlines())["request"]]
    for refused, reason in ((missing, "needs its token: set $EMULATOR_TOKEN"), (wrong, "refused the token in $EMULATOR_TOKEN")):
        assert refused.returncode == 1 and "starting" not in refused.stderr
        assert refused.stderr.strip() == f"emulator request: error: the emulator at {emulator.url} {reason}"


def test_a_failed_request_exits_1_with_its_error(project):
    run = request(project, "inputs/photo.bin", "-i", "scale=-1")
    assert run.returncode == 1
    assert "error    An exception occurred in the request. See the logs for details." in run.stdout


def test_a_missing_field_fails_the_request_with_its_name(project):
    run = request(project, "-i", "scale=2")
    assert run.returncode == 1
    assert "error    Missing input field 'photo' of type file" in run.stdout, run.stdout


@pytest.mark.parametrize("args, message", [
    (("-i", "colour=red", "inputs/photo.bin"), "-i 'colour=red': write NAME=VALUE with NAME one of photo, scale"),
    (("missing.jpg",), "photo: no file at missing.jpg"),
    (("--json", "{nope"), "--json is not valid JSON (Expecting property name enclosed in double quotes: line 1 column 2 (char 1))"),
    (("--json", "[" * 100_000), "--json is not valid JSON (maximum recursion depth exceeded while decoding a JSON array "
     "from a unicode string)"),
])
def test_refused_requests_say_why_in_one_line(project, args, message):
    run = request(project, *args)
    assert run.returncode == 1 and "Traceback" not in run.stderr
    assert run.stderr.strip().splitlines()[-1] == f"emulator request: error: {message}"


def test_away_from_its_project_it_says_where_to_run_it(tmp_path):
    """Outside a project, the package named by the defaults is not there: it was read as one without spec
    files, and the request refused as plain text, whatever the emulator at --url served."""
    run = request(tmp_path, "photo.jpg")
    assert run.returncode == 1 and "Traceback" not in run.stderr
    assert run.stderr.strip().splitlines()[-1] == (
        f"emulator request: error: no package at {tmp_path / 'deployment_package'}: run this from the project's "
        "folder, whose pyproject.toml names the package")


# A server that answers at --url as the deployment's emulator would, with the answer a test gives: what a
# port taken by someone else can send. Its files are at /files/NAME (b"served NAME").
Answer = Callable[[str], dict[str, Any]]  # the answer, given the server's own URL


@pytest.fixture
def fake_emulator() -> Iterator[Callable[[Answer], tuple[str, list[str]]]]:
    servers: list[ThreadingHTTPServer] = []

    def start(answer: Answer) -> tuple[str, list[str]]:
        """The server's URL and the paths it was asked for (GET)."""
        asked: list[str] = []

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                asked.append(self.path)
                self._send(b"served " + self.path.removeprefix("/files/").encode() if self.path.startswith("/files/") else b"{}")

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                self._send(json.dumps(answer(url)).encode())

            def _send(self, body: bytes) -> None:
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        servers.append(server)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{server.server_address[1]}"
        return url, asked

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def completed(result: dict[str, Any], file_urls: dict[str, str]) -> dict[str, Any]:
    return {"id": "req-1", "deployment": "thumbs", "version": "v1", "status": "completed", "success": True,
            "result": result, "error_message": None, "timeout": 300, "emulator_file_urls": file_urls}


def request_at(project: Path, url: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "emulator", "request", "--url", url, "inputs/photo.bin", *args],
                          cwd=project, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)})


def test_only_the_files_the_result_names_are_saved(project, fake_emulator):
    """Before, every key of `emulator_file_urls` was downloaded, named or not by the result."""
    url, asked = fake_emulator(lambda url: completed(
        {"thumb": "ubiops-file://default/r/thumb.bin", "size": 1, "scale": 2.0},
        {"ubiops-file://default/r/thumb.bin": f"{url}/files/thumb.bin", "ubiops-file://default/r/extra.sh": f"{url}/files/extra.sh"}))
    run = request_at(project, url)
    assert run.returncode == 0, run.stderr
    assert (project / "inputs" / "thumb.bin").read_bytes() == b"served thumb.bin"
    assert not (project / "inputs" / "extra.sh").exists() and "/files/extra.sh" not in asked


def test_an_output_file_from_another_origin_is_refused(project, fake_emulator):
    """Before, the file was downloaded from any URL the answer gave."""
    other, other_asked = fake_emulator(lambda url: {})
    url, _ = fake_emulator(lambda url: completed(
        {"thumb": "ubiops-file://default/r/thumb.bin", "size": 1, "scale": 2.0},
        {"ubiops-file://default/r/thumb.bin": f"{other}/files/thumb.bin"}))
    run = request_at(project, url)
    assert run.returncode == 1 and "Traceback" not in run.stderr and run.stdout == ""
    assert run.stderr.strip() == (f"emulator request: error: the emulator at {url} offered ubiops-file://default/r/thumb.bin "
                                  f"from {other}/files/thumb.bin, not its own origin: nothing saved")
    assert other_asked == [] and not (project / "inputs" / "thumb.bin").exists()


def test_names_with_leading_dots_lose_them(project, fake_emulator):
    """Before, `.bashrc` was saved as such (over one there), and `..` failed writing to the folder above."""
    (project / "inputs" / ".bashrc").write_text("mine")
    url, _ = fake_emulator(lambda url: completed(
        {"thumb": "ubiops-file://default/r/.bashrc", "size": 1, "scale": 2.0},
        {"ubiops-file://default/r/.bashrc": f"{url}/files/.bashrc"}))
    run = request_at(project, url)
    assert run.returncode == 0, run.stderr
    assert (project / "inputs" / ".bashrc").read_text() == "mine"
    assert (project / "inputs" / "bashrc").read_bytes() == b"served .bashrc"
    (project / "pkg" / "ubiops_output_spec.json").write_text(json.dumps([{"name": "thumb", "data_type": "file"}]))
    url, _ = fake_emulator(lambda url: completed(
        {"thumb": "ubiops-file://default/r/.."}, {"ubiops-file://default/r/..": f"{url}/files/dots"}))
    run = request_at(project, url)
    assert run.returncode == 0, run.stderr
    assert (project / "inputs" / "output").read_bytes() == b"served dots"


def test_output_dir_chooses_where_output_files_go(project, fake_emulator):
    """Without an input file they went into the working directory (report.json, report-1.json, …), untracked
    files in the project, and nothing chose another folder."""
    (project / "pkg" / "ubiops_input_spec.json").write_text(json.dumps([{"name": "scale", "data_type": "double"}]))
    url, _ = fake_emulator(lambda url: completed(
        {"thumb": "ubiops-file://default/r/report.json", "size": 1, "scale": 2.0},
        {"ubiops-file://default/r/report.json": f"{url}/files/report.json"}))
    for args, saved in [((), project / "report.json"), (("--output-dir", "out/new"), project / "out" / "new" / "report.json")]:
        run = subprocess.run([sys.executable, "-m", "emulator", "request", "--url", url, "-i", "scale=1", *args],
                             cwd=project, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
                             env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)})
        assert run.returncode == 0, run.stderr
        assert dict(line.split(None, 1) for line in run.stdout.splitlines())["thumb"] == str(saved)
        assert saved.read_bytes() == b"served report.json"
    assert not (project / "report-1.json").exists()


def test_a_taken_name_is_numbered_never_overwritten(project):
    """Before, an output file named as the input (or any file there) replaced it."""
    (project / "inputs" / "thumb.bin").write_bytes(b"mine")
    run = request(project, "inputs/photo.bin")
    assert run.returncode == 0, run.stderr
    rows = dict(line.split(None, 1) for line in run.stdout.splitlines())
    assert Path(rows["thumb"]) == project / "inputs" / "thumb-1.bin"
    assert (project / "inputs" / "thumb.bin").read_bytes() == b"mine"
    assert (project / "inputs" / "thumb-1.bin").read_bytes() == (project / "inputs" / "photo.bin").read_bytes()


def test_every_saved_path_is_printed(project, fake_emulator):
    """The table shows each, in full (an `array_file` field a row per file; before, a list of its URIs cut
    at 80 characters); `--output json` keeps the answer on stdout and says them on stderr (before, nothing)."""
    (project / "pkg" / "ubiops_output_spec.json").write_text(json.dumps([{"name": "frames", "data_type": "array_file"}]))
    names = [f"frame-{i}-with-a-name-long-enough-to-be-cut-in-a-table-cell.png" for i in range(2)]
    url, _ = fake_emulator(lambda url: completed(
        {"frames": [f"ubiops-file://default/r/{n}" for n in names]}, {f"ubiops-file://default/r/{n}": f"{url}/files/{n}" for n in names}))
    run = request_at(project, url)
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines()[2:] == [f"frames   {project / 'inputs' / n}" for n in names]
    run = request_at(project, url, "--output", "json")
    assert run.returncode == 0 and json.loads(run.stdout)["result"]["frames"][0] == f"ubiops-file://default/r/{names[0]}"
    assert run.stderr.splitlines() == [f"saved {project / 'inputs' / n.replace('.png', '-1.png')}" for n in names]
