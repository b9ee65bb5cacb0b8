"""`python -m deployer init`: a new deployment in one command, whose package passes its own test and
`check` straight away; every refused option is one clear line, and nothing is written then."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import Project
from harness import PROJECT, ROOT

from contract.config import load_config

PYPROJECT = '[project]\nname = "mine"\n\n[tool.deployer]\nproject = "acme"\ndeployment = "old"\nlabels = { a = "b" }\n\n' \
            '[tool.pytest.ini_options]\naddopts = "-ra"\n'


def deployer(cwd, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "deployer", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300, stdin=subprocess.DEVNULL, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)})


@pytest.mark.parametrize("package", ["scorer_package", "scorer package"])
def test_init_writes_a_package_that_passes_its_test_and_check(tmp_path, package):
    """Also in a folder whose name has a space, which the test command's `{package}` once split in two."""
    (tmp_path / "pyproject.toml").write_text(PYPROJECT)
    result = deployer(tmp_path, "init", "scorer", "--input", "text:string", "--input", "photo:file",
                      "--output", "score:double", "--output", "tags:array_string", "--package", package)
    assert result.returncode == 0, result.stderr
    config = load_config(tmp_path)
    assert (config.project, config.deployment, config.package) == ("acme", "scorer", package)
    assert config.sample_input == {"text": "example", "photo": f"{package}/tests/example.txt"}
    text = (tmp_path / "pyproject.toml").read_text()
    assert text.startswith('[project]\nname = "mine"\n') and text.endswith('[tool.pytest.ini_options]\naddopts = "-ra"\n')
    assert "labels" not in text, "the old deployment's section is replaced whole"
    check = deployer(tmp_path, "check")
    assert check.returncode == 0, check.stdout + check.stderr
    assert "ok   emulator tests: 1 passed" in check.stdout and "ok   sample request: completed" in check.stdout


def test_init_without_fields_or_config_makes_a_plain_deployment(tmp_path):
    """Its sample_input is the text the generated test sends: before, it had none, so check sent no sample
    request and push no smoke request."""
    assert deployer(tmp_path, "init", "echo").returncode == 0
    config = load_config(tmp_path)
    assert (config.project, config.sample_input) == ("echo", "example")
    assert (tmp_path / "deployment_package" / "ubiops_input_spec.json").read_text() == "[]\n"
    check = deployer(tmp_path, "check")
    assert check.returncode == 0, check.stdout + check.stderr
    assert "ok   sample request: completed" in check.stdout


def test_init_in_a_subfolder_writes_the_package_path_relative_to_the_config(tmp_path):
    (tmp_path / "pyproject.toml").write_text(PYPROJECT)
    (tmp_path / "sub").mkdir()
    result = deployer(tmp_path / "sub", "init", "scorer", "--input", "photo:file")
    assert result.returncode == 0, result.stderr
    config = load_config(tmp_path / "sub")
    assert config.root == tmp_path and config.package == "sub/deployment_package"
    assert (config.package_path / "deployment.py").is_file()
    assert config.sample_input == {"photo": "sub/deployment_package/tests/example.txt"}
    assert (config.root / config.sample_input["photo"]).is_file()


@pytest.mark.parametrize("existing", ['[project]\nname = "mine"\n', '[tool.deployer]\ndeployment = "old"\n'],
                         ids=["no-section", "section-without-project"])
def test_init_names_the_project_after_the_deployment_when_the_config_has_no_section(tmp_path, existing):
    """A section without a project once kept the template's default (face-profile) as the project."""
    (tmp_path / "pyproject.toml").write_text(existing)
    assert deployer(tmp_path, "init", "scorer").returncode == 0
    assert load_config(tmp_path).project == "scorer"


def test_field_names_that_are_not_bare_toml_keys_are_quoted(tmp_path):
    result = deployer(tmp_path, "init", "scorer", "--input", "a.b:int", "--input", "my field:string")
    assert result.returncode == 0, result.stderr
    assert load_config(tmp_path).sample_input == {"a.b": 1, "my field": "example"}


def test_a_plain_deployment_takes_its_text_from_request_data(tmp_path, remote_ubiops):
    assert deployer(tmp_path, "init", "init-plain-text", "--project", PROJECT).returncode == 0
    project = Project(tmp_path, "init-plain-text")
    project.push_json("--skip-tests", emulator=remote_ubiops)
    for data in ('"hello"', "hello"):
        answer = project.run("--output", "json", "request", "--data", data, emulator=remote_ubiops)
        assert answer.returncode == 0, answer.stderr
        assert json.loads(answer.stdout)["result"] == "hello"
    answer = project.run("--output", "json", "request", emulator=remote_ubiops)
    assert json.loads(answer.stdout)["result"] == "example", "without --data: init's sample_input"
    config = tmp_path / "pyproject.toml"
    config.write_text(config.read_text().replace('sample_input = "example"\n', ""))
    for args, message in [((), "deployment init-plain-text takes plain text: give it with --data"),
                          (("--file", "pyproject.toml"), "deployment init-plain-text takes plain text and has no file input field")]:
        refused = project.run("request", *args, emulator=remote_ubiops)
        assert refused.returncode == 1 and len(refused.stderr.strip().splitlines()) == 1
        assert message in refused.stderr, refused.stderr


@pytest.mark.parametrize("args, message", [
    (("Scorer",), "'Scorer' is not a deployment name: lowercase letters, digits and dashes"),
    (("scorer", "--project", "My Project"), "'My Project' is not a project name"),
    (("scorer", "--input", "text"), "--input 'text': write NAME:TYPE, TYPE one of int, double"),
    (("scorer", "--output", "json"), "array_file; for a json summary, put --output json before init"),
    (("scorer", "--output", "score:float"), "field 'score' has data_type 'float'; expected one of"),
    (("scorer", "--input", "a:int", "--input", "a:int"), "--input[1]: field 'a' is defined twice"),
    (("scorer", "--package", "taken"), "taken/ exists and is not empty; remove it (git rm -r taken && rm -rf taken: files git does not track stay after git rm) or choose --package"),
    (("scorer", "--package", "taken.txt"), "--package taken.txt: "),
])
def test_refused_init_is_one_line_and_writes_nothing(tmp_path, args, message):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "deployment.py").write_text("")
    (tmp_path / "taken.txt").write_text("")
    result = deployer(tmp_path, "init", *args)
    assert result.returncode == 1 and len(result.stderr.strip().splitlines()) == 1
    assert message in result.stderr, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken", "taken.txt"]
