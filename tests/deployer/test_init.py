"""`python -m deployer init`: a new deployment in one command, whose package passes its own test and
`check` straight away; every refused option is one clear line, and nothing is written then."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib

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


def test_init_names_the_project_it_kept_and_the_example_values_to_replace(tmp_path):
    """With a real 4-feature model, check failed on sample_input's example [1.5, 2.5], which nothing said to
    change; and the template's project (face-profile) was kept without a word, so a push to the team's
    UbiOps failed with 404 project not found."""
    (tmp_path / "pyproject.toml").write_text(PYPROJECT.replace('"acme"', '"face-profile"'))
    result = deployer(tmp_path, "init", "iris", "--input", "features:array_double", "--output", "label:string")
    assert result.returncode == 0, result.stderr
    steps = [
        "project 'face-profile' is kept from the old [tool.deployer]: push sends to that UbiOps project; give init "
        "--project NAME, or edit project in pyproject.toml, for another",
        "[tool.deployer] sample_input in pyproject.toml ({ features = [1.5, 2.5] }) and the request in "
        "deployment_package/tests/test_deployment.py hold example values: replace them with an input your model "
        "takes (check and push send sample_input to it)",
        "serve it: make serve; test it: make package-dev (puts requirements.txt's packages in .venv, where the "
        "package's tests run: a test that loads the model needs them), then .venv/bin/python -m deployer check"]
    assert result.stdout.endswith("".join(f"  {step}\n" for step in steps)), result.stdout
    assert "[1.5, 2.5]" in (tmp_path / "deployment_package" / "tests" / "test_deployment.py").read_text()
    (tmp_path / "deployment_package").rename(tmp_path / "first")
    given = deployer(tmp_path, "--output", "json", "init", "iris", "--input", "photo:file", "--project", "team")
    assert given.returncode == 0, given.stderr
    assert json.loads(given.stdout)["next"][:2] == [
        "project 'team': push sends to that UbiOps project; init --project NAME, or edit project in pyproject.toml, "
        "for another",
        "[tool.deployer] sample_input in pyproject.toml ({ photo = \"deployment_package/tests/example.txt\" }) and the "
        "request in deployment_package/tests/test_deployment.py hold example values: replace them with an input your "
        "model takes (check and push send sample_input to it), and deployment_package/tests/example.txt with a file it "
        "takes"]


SUBTABLES = ('[project]\nname = "mine"\n\n[tool.deployer]\nproject = "acme"\ndeployment = "old"\nsecrets = ["API_KEY"]\n'
             'environment_variables = { LOG_LEVEL = "info" }\ninstance_type_group = "16 GB + 4 vCPU"\n\n'
             '[tool.deployer.sample_input]\nimg = "a.jpg"\nnote = """\n[not.a.table]\n"""\n\n'
             '[tool.deployer.labels]\nteam = "vision"\n\n[tool.ruff]\nline-length = 100\n')
DOTTED = ('[project]\nname = "mine"\n\n[tool]\ndeployer.project = "acme"\n'
          'deployer.secrets = [\n  "API_KEY",\n]\nother = 1\n\n[tool.ruff]\nline-length = 100\n')
TOP_LEVEL = ('tool.deployer.project = "acme"\ntool.deployer.labels.team = "vision"\ntool.ruff.line-length = 100\n\n'
             '[project]\nname = "mine"\n')


@pytest.mark.parametrize("existing, dropped", [(SUBTABLES, "secrets, environment_variables, instance_type_group, labels"),
                                               (DOTTED, "secrets"), (TOP_LEVEL, "labels")],
                         ids=["subtables", "dotted-keys", "top-level-keys"])
def test_init_replaces_every_table_and_key_of_the_old_section_and_names_those_it_drops(tmp_path, existing, dropped):
    """`[tool.deployer.sample_input]` stayed after the header's table was replaced, and the file defined
    sample_input twice (every deployer command, and pip install ., failed on it); secrets and the like
    went without a word."""
    (tmp_path / "pyproject.toml").write_text(existing)
    result = deployer(tmp_path, "init", "scorer", "--input", "x:int")
    assert result.returncode == 0, result.stderr
    document = tomllib.loads((tmp_path / "pyproject.toml").read_text())
    assert document["tool"]["deployer"] == {"project": "acme", "deployment": "scorer", "package": "deployment_package",
                                            "emulator_version": "v1", "sample_input": {"x": 1}}
    assert (document["project"], document["tool"]["ruff"]) == ({"name": "mine"}, {"line-length": 100})
    assert document["tool"].get("other", 1) == 1
    assert f"  the old [tool.deployer]'s {dropped} are not in the new one: add back what still applies\n" in result.stdout
    assert deployer(tmp_path, "package").returncode == 0


def test_a_config_whose_section_cannot_be_taken_out_alone_is_left_as_it_was(tmp_path):
    """One inline table holding the deployer's section and another tool's: rewritten, the file would not
    be TOML; it is left untouched, and nothing is written."""
    existing = 'tool = { ruff = { line-length = 100 }, deployer = { project = "acme" } }\n[project]\nname = "mine"\n'
    (tmp_path / "pyproject.toml").write_text(existing)
    result = deployer(tmp_path, "init", "scorer")
    assert result.returncode == 1 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert (f"deployer: error: {tmp_path / 'pyproject.toml'}: cannot rewrite its [tool.deployer] (the result would not be "
            "TOML: Cannot declare ('tool', 'deployer') twice") in result.stderr, result.stderr
    assert "the file is left as it was: remove the section, its [tool.deployer.*] tables and any deployer.* keys" in result.stderr
    assert (tmp_path / "pyproject.toml").read_text() == existing
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pyproject.toml"]


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
    (("scorer", "--package", "template"), "template/ holds the template's face profile; remove it (git rm -r template && rm -rf template: files git does not track stay after git rm) or choose --package"),
    (("scorer", "--package", "taken"), "taken/ exists and is not empty: init writes only a new package. To change its fields, edit its ubiops_input_spec.json, ubiops_output_spec.json and deployment.py (and [tool.deployer] sample_input); for another package, give --package a new folder"),
    (("scorer", "--package", "taken.txt"), "--package taken.txt: "),
])
def test_refused_init_is_one_line_and_writes_nothing(tmp_path, args, message):
    """Removing the folder is advised for the template's face profile only: for the team's own package,
    the advice to rm -rf it would take its uncommitted model with it."""
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "deployment.py").write_text("")
    (tmp_path / "template" / "libraries" / "face_profile").mkdir(parents=True)
    (tmp_path / "taken.txt").write_text("")
    result = deployer(tmp_path, "init", *args)
    assert result.returncode == 1 and len(result.stderr.strip().splitlines()) == 1
    assert message in result.stderr, result.stderr
    assert "rm -rf" not in result.stderr or "template" in args
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken", "taken.txt", "template"]
