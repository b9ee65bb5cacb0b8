"""`python -m emulator request`: one request from the command line, like `cog predict`.

    python -m emulator request portrait.jpg
    python -m emulator request -i img=@portrait.jpg -i align_face=false
    python -m emulator request --json '{"features": [6.5, 3.0]}'

Uses the emulator already serving the configured deployment at `--url` (with the token in
$EMULATOR_TOKEN, if it asks for one), or starts one on the package for this request alone. Prints
the result as a table (or the whole answer with `--output json`) and saves output files beside the
first input file (or in the working directory).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

import httpx

from contract.config import ConfigError, load_config
from contract.package import read_package
from contract.requests import COMPLETED
from contract.spec import Spec, SpecError, loads_strict
from emulator import EMULATOR_TOKEN_VARIABLE
from emulator.launcher import Emulator, running_emulator
from emulator.settings import DEFAULT_HOST, DEFAULT_PORT

CELL_WIDTH = 80


class RequestCommandError(Exception):
    """A request that cannot be sent as given; the message says how to write it."""


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m emulator request", description=__doc__.split("\n")[0])
    parser.add_argument("file", nargs="?", type=Path, help="a file for the deployment's one file input field")
    parser.add_argument("-i", "--input", action="append", default=[], metavar="NAME=VALUE",
                        help="an input field (repeatable); NAME=@path sends a file")
    parser.add_argument("--json", help="the whole input as JSON (instead of FILE and -i)")
    parser.add_argument("--version", help="a version (default: the deployment's default version)")
    parser.add_argument("--url", default=f"http://{DEFAULT_HOST}:{DEFAULT_PORT}",
                        help="a running emulator to use if it serves the deployment (default: %(default)s)")
    parser.add_argument("--output", choices=("text", "json"), default="text", help="json: the whole answer")
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
        except ValueError as exc:
            raise RequestCommandError(f"--json is not valid JSON ({exc})") from None
        return emulator.request(data, version=args.version), {}
    if not spec.fields:
        raise RequestCommandError("the deployment takes plain text: send it with --json '\"your text\"'")
    values, files = form_parts(spec, args.file, args.input)
    if not values and not files:
        raise RequestCommandError(f"give the input: FILE, -i NAME=VALUE ({', '.join(spec.names)}) or --json")
    parts: dict[str, Any] = {**{name: (None, value) for name, value in values.items()}, **files}
    return emulator.request(files=parts, version=args.version), files


def save_outputs(emulator: Emulator, answer: dict[str, Any], folder: Path) -> dict[str, Path]:
    """Each output file of the answer, downloaded into `folder`: {uri: saved path}."""
    saved = {}
    for uri in answer.get("emulator_file_urls") or {}:
        target = folder / uri.rsplit("/", 1)[-1]
        target.write_bytes(emulator.download(answer, uri))
        saved[uri] = target
    return saved


def render(answer: dict[str, Any], saved: dict[str, Path]) -> str:
    """The answer as a two-column table, output files as the paths they were saved to."""
    result = answer.get("result")
    rows = [("status", answer["status"]), ("request", answer["id"])]
    if answer["status"] != COMPLETED:
        rows.append(("error", answer.get("error_message") or ""))
    elif isinstance(result, dict):
        rows += [(name, _cell(saved.get(value, value) if isinstance(value, str) else value)) for name, value in result.items()]
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


def _serving(emulator: Emulator) -> bool:
    """Whether `emulator` serves the deployment. One that refuses the token is an error, not a reason to
    start another: that one would lack the running one's variables, revisions and history."""
    try:
        answer = httpx.get(f"{emulator.api}/projects/{emulator.project}/deployments/{emulator.deployment}",
                           headers=emulator.headers, timeout=2)
    except httpx.TransportError:
        return False
    if answer.status_code == 401:
        raise RequestCommandError(f"the emulator at {emulator.url} " + (
            f"refused the token in ${EMULATOR_TOKEN_VARIABLE}" if emulator.token else f"needs its token: set ${EMULATOR_TOKEN_VARIABLE}"))
    return answer.status_code == 200


def main(argv: list[str]) -> None:
    args = parse_args(argv)
    try:
        config = load_config()
        if not config.package_path.is_dir():  # else read as a package without spec files: plain text, wrongly
            raise RequestCommandError(f"no package at {config.package_path}: run this from the project's folder, "
                                      "whose pyproject.toml names the package")
        spec = read_package(config.package_path).input_spec
        running = Emulator(args.url, config.project, config.deployment, token=os.environ.get(EMULATOR_TOKEN_VARIABLE) or None)
        if _serving(running):
            answer, saved = _request(running, args, spec)
        else:
            print(f"starting the emulator on {config.package}…", file=sys.stderr)
            with running_emulator(config.package_path, "--version", config.emulator_version, project=config.project,
                                  deployment=config.deployment, cwd=config.root) as emulator:
                answer, saved = _request(emulator, args, spec)
    except (ConfigError, SpecError, RequestCommandError, RuntimeError) as exc:
        sys.exit(f"emulator request: error: {exc}")
    except httpx.HTTPStatusError as exc:
        sys.exit(f"emulator request: error: {exc.response.status_code}: {_error_text(exc.response)}")
    try:
        print(json.dumps(answer, indent=2) if args.output == "json" else render(answer, saved), flush=True)
    except BrokenPipeError:  # the reader went away (`| head`): what it did not read is dropped, without a traceback
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    sys.exit(0 if answer["status"] == COMPLETED else 1)


def _request(emulator: Emulator, args: argparse.Namespace, spec: Spec) -> tuple[dict[str, Any], dict[str, Path]]:
    """Send the request; output files go beside the first file sent (or into the working directory)."""
    answer, files = send(emulator, args, spec)
    first = next(iter(files.values()), None)
    return answer, save_outputs(emulator, answer, (first.parent if first else Path.cwd()).resolve())


def _error_text(response: httpx.Response) -> str:
    try:
        return str(response.json().get("error"))
    except ValueError:
        return response.text
