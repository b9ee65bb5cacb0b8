"""`python -m deployer init NAME`: start a new deployment in one command, like `cog init`.

Writes a package folder that serves and passes its own test straight away — `deployment.py`, both
spec files from `--input`/`--output` (`name:type`), `requirements.txt`, `ubiops.yaml`,
`.ubiops-ignore`, and `tests/test_deployment.py` using the `emulator.testing` plugin — and points
`[tool.deployer]` in `pyproject.toml` at it (the rest of that file is left as it was).
"""

from __future__ import annotations

import copy
import json
import os
import re
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from contract.config import CONFIG_FILE, deployer_table, find_config_file
from contract.names import is_name
from contract.spec import DATA_TYPES, SpecError, parse_fields
from deployer.errors import DeployerError

EXAMPLE_FILE = "tests/example.txt"
EXAMPLES: dict[str, Any] = {"int": 1, "double": 1.5, "string": "example", "bool": True, "dict": {"key": "value"},
                            "array_int": [1, 2], "array_double": [1.5, 2.5], "array_string": ["a", "b"],
                            "array_file": []}
PLACEHOLDERS: dict[str, str] = {"int": "0", "double": "0.0", "string": '""', "bool": "False", "dict": "{}",
                                "file": "None", "array_int": "[]", "array_double": "[]", "array_string": "[]",
                                "array_file": "[]"}
TEMPLATE_MARKER = "libraries/face_profile"
"""A folder only the template's face-profile package holds (its model's code)."""
BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
"""TOML's bare keys; any other key (a field named `a.b` or `my field`) is written quoted."""
DEPLOYER_TABLE = ("tool", "deployer")

DEPLOYMENT_PY = '''"""UbiOps deployment {name}.

UbiOps (and the local emulator) import this file, create `Deployment` once per instance and call
`request` for every request. This folder and its `libraries/` are on sys.path.
"""


class Deployment:
    def __init__(self, base_directory, context):
        """Load the model once, e.g. `joblib.load(os.path.join(base_directory, "model1.pkl"))`."""
        self.base_directory = base_directory

    def request(self, data, context):
        """{inputs}: return {outputs}."""
        return {result}
'''

TEST_PY = '''"""The first test of {name}, run by `make test` and by `python -m deployer check` against the very
zip it uploads. `ubiops_emulator` serves this package in a local UbiOps (the `emulator.testing` plugin)."""

from pathlib import Path

HERE = Path(__file__).parent


def test_an_example_request_completes(ubiops_emulator):
    answer = ubiops_emulator.request({data}{files})
    assert answer["status"] == "completed", answer["error_message"]
    assert {expected}
'''


def parse_field_options(options: list[str], direction: str) -> list[dict[str, str]]:
    """`name:type` options as spec-file fields; a clear error for a bad one."""
    fields = []
    for option in options:
        name, _, data_type = option.partition(":")
        if not data_type:
            hint = (f"; for a {option} summary, put --output {option} before init"
                    if direction == "output" and option in ("text", "json") else "")
            raise DeployerError(f"--{direction} {option!r}: write NAME:TYPE, TYPE one of {', '.join(DATA_TYPES)}{hint}")
        fields.append({"name": name, "data_type": data_type})
    try:
        parse_fields(fields, f"--{direction}")
    except SpecError as exc:
        raise DeployerError(str(exc)) from None
    return fields


def init_deployment(root: Path, name: str, package: str, inputs: list[str], outputs: list[str],
                    project: str | None = None) -> dict[str, Any]:
    """Write the package and its `[tool.deployer]` section; what was written. The project is kept
    from the existing config unless given (a new config's is named after the deployment)."""
    if not is_name(name):
        raise DeployerError(f"{name!r} is not a deployment name: lowercase letters, digits and dashes")
    input_fields, output_fields = parse_field_options(inputs, "input"), parse_field_options(outputs, "output")
    root = root.resolve()
    folder = root / package
    _refuse_taken(folder, package)
    config_file = find_config_file(root) or root / CONFIG_FILE
    kept = None if project else _configured_project(config_file)
    project = project or kept or name
    if not is_name(project):
        raise DeployerError(f"{project!r} is not a project name: lowercase letters, digits and dashes")
    package = _relative_to_config(folder, config_file)
    sample = _sample_input(input_fields, package)
    files = {
        "deployment.py": DEPLOYMENT_PY.format(name=name, inputs=_describe("data", input_fields),
                                              outputs=_describe("one value per output field", output_fields),
                                              result=_result(output_fields)),
        "ubiops_input_spec.json": json.dumps(input_fields, indent=2) + "\n",
        "ubiops_output_spec.json": json.dumps(output_fields, indent=2) + "\n",
        "requirements.txt": "# What the deployment imports, one pinned requirement a line (e.g. scikit-learn==1.7.2).\n",
        "ubiops.yaml": "# System packages (apt: {packages: [...]}) and environment_variables: [\"NAME=value\"].\n",
        ".ubiops-ignore": "tests/\n",
        "tests/test_deployment.py": _test(name, input_fields, output_fields),
    }
    if any(f["data_type"] == "file" for f in input_fields):
        files[EXAMPLE_FILE] = "An example input file; replace it with one your model takes.\n"
    existing = ""
    if config_file.is_file():
        deployer_table(config_file)  # a file that is not UTF-8 or not TOML: the deployer's message for it
        existing = config_file.read_text(encoding="utf-8")
    config, dropped = rewritten_config(existing, _section(project, name, package, sample), config_file)
    for relative, text in files.items():
        (folder / relative).parent.mkdir(parents=True, exist_ok=True)
        (folder / relative).write_text(text)
    config_file.write_text(config, encoding="utf-8")
    return {"package": str(folder), "config": str(config_file), "files": sorted(files), "project": project,
            "deployment": name, "dropped": dropped,
            "next": _next_steps(project, kept, config_file, package, sample, any(f["data_type"] == "file" for f in input_fields))}


def _next_steps(project: str, kept: str | None, config_file: Path, package: str, sample: dict[str, Any] | str,
                has_file: bool) -> list[str]:
    """What to do after init, printed with its summary (and under "next" in JSON): a review that followed
    the README found each of these only once `check` or a push to UbiOps failed on it."""
    where = config_file.name
    if kept:
        named = (f"project {kept!r} is kept from the old [tool.deployer]: push sends to that UbiOps project; give "
                 f"init --project NAME, or edit project in {where}, for another")
    else:
        named = f"project {project!r}: push sends to that UbiOps project; init --project NAME, or edit project in {where}, for another"
    examples = (f"[tool.deployer] sample_input in {where} ({_toml(sample)}) and the request in {package}/tests/"
                f"test_deployment.py hold example values: replace them with an input your model takes (check and "
                f"push send sample_input to it)")
    if has_file:
        examples += f", and {package}/{EXAMPLE_FILE} with a file it takes"
    return [named, examples,
            "serve it: make serve; test it: make package-dev (puts requirements.txt's packages in .venv, where the "
            "package's tests run: a test that loads the model needs them), then .venv/bin/python -m deployer check"]


def rewritten_config(existing: str, section: str, config_file: Path) -> tuple[str, list[str]]:
    """`existing` with every `tool.deployer` table and key removed (the `[tool.deployer]` table, its
    `[tool.deployer.*]` subtables, dotted keys such as `deployer.labels = …` under `[tool]`) and `section`
    in the place of its header (at the end without one); and the keys of the old section that `section`
    does not set again. A DeployerError, before anything is written, when the result would not be the
    same document with the new section: a regular expression once left `[tool.deployer.sample_input]`
    behind, and the file defined sample_input twice (no deployer command, nor `pip install .`, read it)."""
    def refused(why: str) -> DeployerError:
        return DeployerError(f"{config_file}: cannot rewrite its [tool.deployer] ({why}); the file is left as it "
                             f"was: remove the section, its [tool.deployer.*] tables and any deployer.* keys, then "
                             f"run init again")

    try:
        document = tomllib.loads(existing)
    except tomllib.TOMLDecodeError as exc:
        raise DeployerError(f"{config_file}: {exc}") from None
    tool = document.get("tool")
    old = tool.get("deployer") if isinstance(tool, dict) else None
    new = tomllib.loads(section)["tool"]["deployer"]
    kept: list[str] = []
    place = None
    in_deployer_table = False
    for text, path, is_header in _statements(existing, refused):
        if is_header:
            in_deployer_table = path[:2] == DEPLOYER_TABLE
        if in_deployer_table or path[:2] == DEPLOYER_TABLE:  # the table's comment lines go with it
            if is_header and place is None:
                place = len(kept)
            continue
        kept.append(text)
    if place is not None:
        kept.insert(place, section + ("\n" if kept[place:] else ""))
    else:
        rest = "".join(kept)
        kept = [rest, "\n" if rest and not rest.endswith("\n") else "", "\n" if rest.strip() else "", section]
    result = "".join(kept)
    try:
        written = tomllib.loads(result)
    except tomllib.TOMLDecodeError as exc:
        raise refused(f"the result would not be TOML: {exc}") from None
    expected = copy.deepcopy(document)
    expected.setdefault("tool", {})["deployer"] = new
    if written != expected:
        raise refused("its tables and keys are not where they can be taken out alone: in an inline table, say")
    return result, [key for key in old if key not in new] if isinstance(old, dict) else []


def _statements(text: str, refused: Callable[[str], DeployerError]) -> Iterator[tuple[str, tuple[str, ...], bool]]:
    """The TOML document `text` cut into its statements, as written (their lines, a multi-line value's
    all), each with the full path of the table or key it names (`()` for a blank or comment line) and
    whether it is a table's header. A statement ends at the first line that completes it as TOML."""
    lines = text.splitlines(keepends=True)
    table: tuple[str, ...] = ()
    start = 0
    while start < len(lines):
        first = lines[start].strip()
        if not first or first.startswith("#"):
            yield lines[start], (), False
            start += 1
            continue
        for end in range(start + 1, len(lines) + 1):
            try:
                parsed = tomllib.loads("".join(lines[start:end]))
                break
            except tomllib.TOMLDecodeError:
                continue
        else:
            raise refused(f"line {start + 1} does not read as a TOML statement alone")
        is_header = first.startswith("[")
        path = _path(parsed, is_header)
        if is_header:
            table = path
        yield "".join(lines[start:end]), path if is_header else table + path, is_header
        start = end


def _path(parsed: dict[str, Any], is_header: bool) -> tuple[str, ...]:
    """The keys down to what one statement, parsed alone, defines: a header's table (the last of an
    array of tables), or a key (and, harmlessly, those of a one-key inline table it is given)."""
    path: list[str] = []
    node: Any = parsed
    while isinstance(node, dict) and len(node) == 1:
        key = next(iter(node))
        path.append(key)
        node = node[key]
        if is_header and isinstance(node, list) and node:
            node = node[-1]
    return tuple(path)


def _refuse_taken(folder: Path, package: str) -> None:
    """The package folder must be new or empty: init never overwrites someone's files. Removing it is
    advised only for the template's face profile: said of the team's own package, `rm -rf` would take
    its uncommitted model with it."""
    if folder.exists() and not folder.is_dir():
        raise DeployerError(f"--package {package}: {folder} exists and is not a folder; choose another --package")
    if not (folder.exists() and any(folder.iterdir())):
        return
    if (folder / TEMPLATE_MARKER).is_dir():
        raise DeployerError(f"{package}/ holds the template's face profile; remove it (git rm -r {package} && rm -rf "
                            f"{package}: files git does not track stay after git rm) or choose --package")
    raise DeployerError(f"{package}/ exists and is not empty: init writes only a new package. To change its fields, "
                        f"edit its ubiops_input_spec.json, ubiops_output_spec.json and deployment.py (and [tool.deployer] sample_input); "
                        f"for another package, give --package a new folder")


def _configured_project(config_file: Path) -> str | None:
    """The project an existing `[tool.deployer]` section sets; None when there is none to keep (a section
    without one once kept the template's default, face-profile)."""
    table = deployer_table(config_file) if config_file.is_file() else None
    project = (table or {}).get("project")
    return project if isinstance(project, str) and project else None


def _relative_to_config(folder: Path, config_file: Path) -> str:
    """`[tool.deployer] package`, which the config reads relative to its own folder (not the working one)."""
    return Path(os.path.relpath(folder, config_file.parent)).as_posix()


def _describe(what: str, fields: list[dict[str, str]]) -> str:
    return f"{what} ({', '.join(f['name'] for f in fields)})" if fields else f"{what} (plain text)"


def _result(outputs: list[dict[str, str]]) -> str:
    if not outputs:
        return "str(data)"
    return "{" + ", ".join(f"{json.dumps(f['name'])}: {PLACEHOLDERS[f['data_type']]}" for f in outputs) + "}"


def _example(field: dict[str, str]) -> Any:
    return EXAMPLES.get(field["data_type"])


def _sample_input(inputs: list[dict[str, str]], package: str) -> dict[str, Any] | str:
    """`[tool.deployer] sample_input`: file fields as paths relative to the project; for plain-text
    input the text the generated test sends too, so check and push send a sample request."""
    if not inputs:
        return "example"
    return {f["name"]: f"{package}/{EXAMPLE_FILE}" if f["data_type"] == "file" else _example(f) for f in inputs}


def _test(name: str, inputs: list[dict[str, str]], outputs: list[dict[str, str]]) -> str:
    data = {f["name"]: _example(f) for f in inputs if f["data_type"] != "file"}
    file_names = [f["name"] for f in inputs if f["data_type"] == "file"]
    files = (", files={" + ", ".join(f'"{n}": HERE / "example.txt"' for n in file_names) + "}") if file_names else ""
    expected = (f"sorted(answer[\"result\"]) == {sorted(f['name'] for f in outputs)!r}" if outputs
                else "isinstance(answer[\"result\"], str)")
    return TEST_PY.format(name=name, data=repr(data) if inputs else '"example"', files=files, expected=expected)


def _section(project: str, name: str, package: str, sample: dict[str, Any] | str) -> str:
    lines = ["[tool.deployer]", f"project = {_toml(project)}", f"deployment = {_toml(name)}",
             f"package = {_toml(package)}", 'emulator_version = "v1"']
    if sample:
        lines.append(f"sample_input = {_toml(sample)}")
    return "\n".join(lines) + "\n"


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_toml_key(k)} = {_toml(v)}" for k, v in value.items()) + " }"
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, str):
        return _toml_string(value)
    return json.dumps(value)


def _toml_key(key: str) -> str:
    """A bare key as it is; any other quoted, so `a.b` stays one key rather than a nested table."""
    return key if BARE_KEY.fullmatch(key) else _toml_string(key)


def _toml_string(text: str) -> str:
    """A TOML basic string: JSON's escapes, but characters beyond the BMP as they are (TOML refuses
    JSON's surrogate pairs) and DEL escaped (which JSON leaves)."""
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")
