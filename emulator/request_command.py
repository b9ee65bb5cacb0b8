"""`python -m emulator request`: one request from the command line, like `cog predict`.

    python -m emulator request portrait.jpg
    python -m emulator request -i img=@portrait.jpg -i align_face=false
    python -m emulator request --json '{"features": [6.5, 3.0]}'

Uses the emulator already serving the configured deployment at `--url` (with the token in
$EMULATOR_TOKEN, if it asks for one), or starts one on the package for this request alone. Prints
the result as a table (or the whole answer with `--output json`) and saves output files in
`--output-dir`, else beside the first input file (or in the working directory).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
from pathlib import Path
from typing import Any

import httpx

from contract.config import ConfigError, load_config
from contract.files import map_files, numbered_names
from contract.package import Package, read_package
from contract.requests import COMPLETED
from contract.spec import Spec, SpecError, loads_strict
from emulator import EMULATOR_TOKEN_VARIABLE
from emulator.launcher import Emulator, running_emulator
from emulator.settings import DEFAULT_HOST, DEFAULT_PORT

CELL_WIDTH = 80
SAVING = ("Output files (those the result's file fields name) are downloaded only from the emulator's own "
          "origin (--url's scheme, host and port) and saved in --output-dir, else beside the first input file (or "
          "in the working directory, where git sees them as untracked files), never over an existing file: a "
          "name taken gets -1, -2, ... before its extension, and a "
          "name's leading dots are dropped (one left empty is saved as 'output'). The table shows the saved "
          "paths; with --output json they are printed on stderr as 'saved PATH'.")


class RequestCommandError(Exception):
    """A request that cannot be sent as given; the message says how to write it."""


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m emulator request", description=__doc__.split("\n")[0], epilog=SAVING)
    parser.add_argument("file", nargs="?", type=Path, help="a file for the deployment's one file input field")
    parser.add_argument("-i", "--input", action="append", default=[], metavar="NAME=VALUE",
                        help="an input field (repeatable); NAME=@path sends a file")
    parser.add_argument("--json", help="the whole input as JSON (instead of FILE and -i)")
    parser.add_argument("--version", help="a version (default: the package's, [tool.deployer] emulator_version, "
                        "even where a running emulator's deployment has another default)")
    parser.add_argument("--url", default=f"http://{DEFAULT_HOST}:{DEFAULT_PORT}",
                        help="a running emulator to use if it serves the deployment (default: %(default)s)")
    parser.add_argument("--output", choices=("text", "json"), default="text", help="json: the whole answer")
    parser.add_argument("--output-dir", type=Path, metavar="DIR",
                        help="save output files here, made if missing (default: beside the first input file, or the "
                        "working directory)")
    args = parser.parse_args(argv)
    if args.json is not None and (args.file or args.input):
        parser.error("--json holds the whole input: give FILE and -i without it")
    return args


def form_parts(spec: Spec, file: Path | None, inputs: list[str]) -> tuple[dict[str, str], dict[str, Path]]:
    """The form values and the files of a multipart request, from FILE and `-i` options."""
    values: dict[str, str] = {}
    files: dict[str, Path] = {}
    if file is not None:
        file_fields = [f.name for f in spec.fields if f.data_type == "file"]
        if len(file_fields) != 1:
            raise RequestCommandError(f"the deployment has {len(file_fields)} file input fields "
                                      f"({', '.join(file_fields) or 'none'}); name it: -i FIELD=@{file}")
        files[file_fields[0]] = file
    for option in inputs:
        name, equals, value = option.partition("=")
        if not equals or spec.field(name) is None:
            raise RequestCommandError(f"-i {option!r}: write NAME=VALUE with NAME one of {', '.join(spec.names) or '(none: plain input)'}")
        if value.startswith("@"):
            files[name] = Path(value[1:])
        else:
            values[name] = value
    for name, path in files.items():
        if not path.is_file():
            raise RequestCommandError(f"{name}: no file at {path}")
    return values, files


def send(emulator: Emulator, args: argparse.Namespace, spec: Spec) -> tuple[dict[str, Any], dict[str, Path]]:
    """The answer to the request the arguments describe, and the files it sent."""
    if args.json is not None:
        try:
            data = loads_strict(args.json)
        except (ValueError, RecursionError) as exc:  # RecursionError: nested past what Python's parser takes
            raise RequestCommandError(f"--json is not valid JSON ({exc})") from None
        return emulator.request(data, version=args.version), {}
    if not spec.fields:
        raise RequestCommandError("the deployment takes plain text: send it with --json '\"your text\"'")
    values, files = form_parts(spec, args.file, args.input)
    if not values and not files:
        raise RequestCommandError(f"give the input: FILE, -i NAME=VALUE ({', '.join(spec.names)}) or --json")
    parts: dict[str, Any] = {**{name: (None, value) for name, value in values.items()}, **files}
    return emulator.request(files=parts, version=args.version), files


def output_uris(spec: Spec, answer: dict[str, Any]) -> list[str]:
    """The URIs the result's file fields (`file`, `array_file` of the output spec) hold, once each."""
    uris: dict[str, None] = {}

    def collect(_field: Any, value: Any) -> Any:
        if isinstance(value, str):
            uris[value] = None
        return value

    if answer.get("status") == COMPLETED:
        map_files(spec, answer.get("result"), collect)
    return list(uris)


def save_name(uri: str) -> str:
    """The name an output file is saved under: the last part of its URI without leading dots (no
    dotfile, no `.` or `..`), or `output` if nothing is left."""
    return uri.rsplit("/", 1)[-1].replace("\0", "").lstrip(".") or "output"


def save_outputs(emulator: Emulator, answer: dict[str, Any], folder: Path, spec: Spec) -> dict[str, Path]:
    """Each output file of the result's file fields, downloaded into `folder` from the emulator's own
    origin: {uri: saved path}. A name already taken is numbered (`stem-1.ext`, …), never overwritten."""
    urls = answer.get("emulator_file_urls") or {}
    wanted = [uri for uri in output_uris(spec, answer) if isinstance(urls, dict) and isinstance(urls.get(uri), str)]
    for uri in wanted:
        if not _same_origin(urls[uri], emulator.url):
            raise RequestCommandError(f"the emulator at {emulator.url} offered {uri} from {urls[uri]}, "
                                      "not its own origin: nothing saved")
    saved: dict[str, Path] = {}
    if wanted:
        try:
            folder.mkdir(parents=True, exist_ok=True)  # --output-dir's, made as asked
        except OSError as exc:
            raise RequestCommandError(f"cannot make {folder} for the output files: {exc.strerror}") from None
    for uri in wanted:
        try:
            content = emulator.download(answer, uri)
        except httpx.HTTPError as exc:
            raise RequestCommandError(f"{uri}: the download failed ({exc})") from None
        saved[uri] = _write_new(folder, save_name(uri), content)
    return saved


def _same_origin(url: str, base: str) -> bool:
    try:
        one, other = httpx.URL(url), httpx.URL(base)
    except httpx.InvalidURL:
        return False
    return (one.scheme, one.host, one.port) == (other.scheme, other.host, other.port)


def _write_new(folder: Path, name: str, content: bytes) -> Path:
    """`content` in a new file of `folder` named `name`, or the first of `name`'s numbered names free."""
    for candidate in numbered_names(name):
        target = folder / candidate
        try:
            with target.open("xb") as file:  # exclusive: never an existing file, nor through a symlink
                file.write(content)
        except FileExistsError:
            continue
        return target
    raise AssertionError("numbered_names never ends")


def render(answer: dict[str, Any], saved: dict[str, Path]) -> str:
    """The answer as a two-column table, output files as the paths they were saved to (in full; an
    `array_file` field takes a row per file)."""
    result = answer.get("result")
    rows = [("status", answer["status"]), ("request", answer["id"])]
    if answer["status"] != COMPLETED:
        rows.append(("error", answer.get("error_message") or ""))
    elif isinstance(result, dict):
        for name, value in result.items():
            if isinstance(value, str) and value in saved:
                rows.append((name, str(saved[value])))
            elif isinstance(value, list) and value and all(isinstance(v, str) and v in saved for v in value):
                rows += [(name, str(saved[v])) for v in value]
            else:
                rows.append((name, _cell(value)))
    else:
        rows.append(("result", _cell(result)))
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


def _cell(value: Any) -> str:
    text = str(value) if isinstance(value, (str, Path)) else json.dumps(_rounded(value))
    return text if len(text) <= CELL_WIDTH else text[: CELL_WIDTH - 1] + "…"


def _rounded(value: Any) -> Any:
    """Floats to 4 decimals, for reading (`--output json` keeps them whole)."""
    if isinstance(value, float):
        return round(value, 4)
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    return value


def _serving(emulator: Emulator) -> dict[str, Any] | None:
    """The deployment's details, if `emulator` serves it. One that refuses the token is an error, not a
    reason to start another: that one would lack the running one's variables, revisions and history."""
    try:
        answer = httpx.get(f"{emulator.api}/projects/{emulator.project}/deployments/{emulator.deployment}",
                           headers=emulator.headers, timeout=2)
    except httpx.TransportError:
        return None
    if answer.status_code == 401:
        raise RequestCommandError(f"the emulator at {emulator.url} " + (
            f"refused the token in ${EMULATOR_TOKEN_VARIABLE}" if emulator.token else f"needs its token: set ${EMULATOR_TOKEN_VARIABLE}"))
    return answer.json() if answer.status_code == 200 else None


def _package_version(emulator: Emulator, deployment: dict[str, Any], version: str) -> str | None:
    """`version`, the package's, when the deployment's default is another one (kept from an earlier run,
    say a `deployer push --promote` to the emulator) and `version` exists: a request without a version
    would run that default's code, not the package's. None otherwise (the default is the package's)."""
    default = deployment.get("default_version")
    if not isinstance(default, str) or default == version:
        return None
    answer = httpx.get(f"{emulator.api}/projects/{emulator.project}/deployments/{emulator.deployment}/versions/{version}",
                       headers=emulator.headers, timeout=2)
    if answer.status_code != 200:
        return None
    print(f"sending to version {version}, the package's: the deployment's default is {default}", file=sys.stderr)
    return version


def main(argv: list[str]) -> None:
    args = parse_args(argv)
    try:
        config = load_config()
        if not config.package_path.is_dir():  # else read as a package without spec files: plain text, wrongly
            raise RequestCommandError(f"no package at {config.package_path}: run this from the project's folder, "
                                      "whose pyproject.toml names the package")
        package = read_package(config.package_path)
        running = Emulator(args.url, config.project, config.deployment, token=os.environ.get(EMULATOR_TOKEN_VARIABLE) or None)
        if (deployment := _serving(running)) is not None:
            if args.version is None:
                args.version = _package_version(running, deployment, config.emulator_version)
            answer, saved = _request(running, args, package)
        else:
            print(f"starting the emulator on {config.package}…", file=sys.stderr)
            with running_emulator(config.package_path, "--version", config.emulator_version, project=config.project,
                                  deployment=config.deployment, cwd=config.root,
                                  token=secrets.token_urlsafe(32)) as emulator:  # as every emulator a tool starts
                answer, saved = _request(emulator, args, package)
    except (ConfigError, SpecError, RequestCommandError, RuntimeError) as exc:
        sys.exit(f"emulator request: error: {exc}")
    except httpx.HTTPStatusError as exc:
        sys.exit(f"emulator request: error: {exc.response.status_code}: {_error_text(exc.response)}")
    if args.output == "json":  # stdout stays the whole answer; the table shows the paths in its place
        for path in saved.values():
            print(f"saved {path}", file=sys.stderr)
    try:
        print(json.dumps(answer, indent=2) if args.output == "json" else render(answer, saved), flush=True)
    except BrokenPipeError:  # the reader went away (`| head`): what it did not read is dropped, without a traceback
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    sys.exit(0 if answer["status"] == COMPLETED else 1)


def _request(emulator: Emulator, args: argparse.Namespace, package: Package) -> tuple[dict[str, Any], dict[str, Path]]:
    """Send the request; output files go into --output-dir, else beside the first file sent (or into the
    working directory: a request without files left report.json, report-1.json, … untracked in the project)."""
    answer, files = send(emulator, args, package.input_spec)
    first = next(iter(files.values()), None)
    folder = args.output_dir or (first.parent if first else Path.cwd())
    return answer, save_outputs(emulator, answer, folder.resolve(), package.output_spec)


def _error_text(response: httpx.Response) -> str:
    try:
        return str(response.json().get("error"))
    except ValueError:
        return response.text
