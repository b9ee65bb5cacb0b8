"""One rule for how UbiOps calls a deployment (`contract.calling`): the deployer's static check of
`deployment.py` accepts exactly the signatures the emulator's loader can call."""

from __future__ import annotations

import sys

import pytest

from contract.package import PackageCheckError, check_deployment_class
from emulator.runtime import loader

SIGNATURES = [
    ("def __init__(self): pass", "def request(self, data): return data"),
    ("def __init__(self, base_directory, context): pass", "def request(self, data, context): return context['id']"),
    ("def __init__(self, context): pass", "def request(self, data, context=None): return data"),
    ("def __init__(self, base_directory): pass", "def request(self, *args): return args[0]"),
    ("def __init__(self, **kwargs): pass", "def request(self, data, **options): return data"),
    ("def __init__(self, base_directory, context, model=None): pass", "def request(self, data, verbose=False): return data"),
    ("def __init__(self, model_path): pass", "def request(self, data): return data"),
    ("def __init__(self): pass", "def request(self, data, context, verbose=False): return data"),
    ("def __init__(self): pass", "def request(self, data, context, extra): return data"),
    ("def __init__(self): pass", "def request(self): return 1"),
    ("def __init__(self, *, context, extra): pass", "def request(self, data): return data"),
    ("def __init__(self): pass", "@staticmethod\n    def request(data): return data"),
    ("def __init__(self): pass", "@staticmethod\n    def request(data, context): return context['id']"),
    ("def __init__(self): pass", "@staticmethod\n    def request(self, data): return data"),
    ("def __init__(self): pass", "@classmethod\n    def request(cls, data): return data"),
    ("def __init__(self): pass", "@classmethod\n    def request(cls): return 1"),
]


def check_accepts(tmp_path, init: str, method: str) -> bool:
    (tmp_path / "deployment.py").write_text(f"class Deployment:\n    {init}\n    {method}\n")
    try:
        assert check_deployment_class(tmp_path) is None, "a plain class is decided"
    except PackageCheckError:
        return False
    return True


def loader_runs(tmp_path, init: str, method: str) -> bool:
    """Whether the loader builds the class and calls its request method; a class it builds is warned of at
    its start (`start_warnings`) exactly when the call fails."""
    module = loader.import_deployment_module(tmp_path, "deployment.py")
    try:
        deployment = loader.instantiate(module, tmp_path, {"deployment": "d"})
    except TypeError:
        return False
    try:
        loader.dispatch(deployment, {"x": 1}, {"id": "r1"})
    except loader.RequestError:
        runs = False
    else:
        runs = True
    assert (loader.start_warnings(deployment) == []) == runs, "the start warns of exactly what fails"
    return runs


@pytest.mark.parametrize("init, method", SIGNATURES)
def test_the_check_accepts_exactly_what_the_loader_can_call(tmp_path, init, method):
    assert check_accepts(tmp_path, init, method) == loader_runs(tmp_path, init, method)


def test_a_class_without_a_request_method_is_refused_by_the_check_and_warned_of_at_its_start(tmp_path):
    """`deployer check` refused it; the emulator started it without a word, and failed every request."""
    (tmp_path / "deployment.py").write_text("class Deployment:\n    def predict(self, data):\n        return data\n")
    with pytest.raises(PackageCheckError) as error:
        check_deployment_class(tmp_path)
    assert str(error.value) == "deployment.py: Deployment has neither request(self, data) nor requests(self, data)"
    deployment = loader.instantiate(loader.import_deployment_module(tmp_path, "deployment.py"), tmp_path, {})
    assert loader.start_warnings(deployment) == [
        "warning: Deployment has neither request(self, data) nor requests(self, data); every request to this deployment fails"]


def test_a_request_with_context_and_a_third_parameter_is_refused_with_the_reason(tmp_path):
    (tmp_path / "deployment.py").write_text(
        "class Deployment:\n    def request(self, data, context, verbose=False):\n        return data\n")
    with pytest.raises(PackageCheckError) as error:
        check_deployment_class(tmp_path)
    assert str(error.value) == (
        "deployment.py line 2: Deployment.request: UbiOps would call it with (data), which fails: "
        "missing a required argument: 'context'")


UNDECIDED = {  # deployment.py and the other files of a package the loader runs, which the source alone cannot judge
    "inherited": ({"libraries/base_inherited.py": "class BaseDeployment:\n    def request(self, data):\n        return data\n",
                   "deployment.py": "from base_inherited import BaseDeployment\n\nclass Deployment(BaseDeployment):\n    pass\n"},
                  "Deployment defines neither request nor requests itself, and may inherit them"),
    "imported": ({"model_imported.py": "class Model:\n    def request(self, data):\n        return data\n",
                  "deployment.py": "from model_imported import Model as Deployment\n"},
                 "Deployment is set on line 1 other than as a top-level class"),
    "conditional": ({"deployment.py": "if True:\n    class Deployment:\n        def request(self, data):\n            return data\n"},
                    "Deployment is set on line 2 other than as a top-level class"),
    "assigned": ({"deployment.py": "def _impl(self, data):\n    return data\n\nclass Deployment:\n    request = _impl\n"},
                 "Deployment.request: not a plain method (assigned, decorated or conditional)"),
    "decorated": ({"deployment.py": "def quiet(method):\n    return lambda self, data: method(self, data, False, {})\n\n"
                                    "class Deployment:\n    @quiet\n    def request(self, data, verbose, context):\n"
                                    "        return data\n"},
                  "Deployment.request: not a plain method (assigned, decorated or conditional)"),
}


@pytest.mark.parametrize("form", UNDECIDED)
def test_a_class_the_source_cannot_judge_is_a_note_and_the_loader_runs_it(tmp_path, form):
    """Each was refused ("defines no top-level class Deployment", "has neither request … nor requests",
    "too many positional arguments"), so `deployer check` and `push --skip-tests` refused a package
    that the emulator (and UbiOps) serve."""
    files, note = UNDECIDED[form]
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert check_deployment_class(tmp_path) == note
    module = loader.import_deployment_module(tmp_path, "deployment.py")
    assert loader.dispatch(loader.instantiate(module, tmp_path, {}), {"x": 1}, {"id": "r1"}) == {"x": 1}


def test_a_file_that_does_not_parse_is_a_note_only_when_the_environments_python_is_newer(tmp_path):
    """With `python3-12` configured, a file using its syntax (`type Number = int | float`) was refused
    as not parsing, by the check's own Python 3.11, while the emulator's Python 3.12 ran it."""
    (tmp_path / "deployment.py").write_text("type Number = int | float\ndef broken(:\n")
    running = sys.version_info[:2]
    newer = (running[0], running[1] + 1)
    note = check_deployment_class(tmp_path, python=newer)
    assert note is not None and note.startswith(f"Python {running[0]}.{running[1]}, the check's own, does not parse it (")
    assert note.endswith(f"the environment's Python {newer[0]}.{newer[1]} is newer and may")
    with pytest.raises(PackageCheckError, match=r"deployment\.py does not parse: invalid syntax"):
        check_deployment_class(tmp_path, python=running)


@pytest.mark.parametrize("code, message", [
    ("class deployment:\n    pass\n\nclass Model:\n    pass\n", "(the classes it defines: deployment, Model)"),
    ("import json\n", "(it defines no class)"),
])
def test_a_file_without_the_class_names_the_classes_it_defines(tmp_path, code, message):
    """Both said only that there was no class `Deployment`."""
    (tmp_path / "deployment.py").write_text(code)
    with pytest.raises(PackageCheckError) as error:
        check_deployment_class(tmp_path)
    assert str(error.value) == f"deployment.py defines no top-level class Deployment {message}"
    with pytest.raises(AttributeError) as failure:
        loader.instantiate(loader.import_deployment_module(tmp_path, "deployment.py"), tmp_path, {})
    assert str(failure.value) == f"the deployment file defines no class called 'Deployment' {message}"


def test_a_deployment_py_below_the_packages_top_is_named_where_it_is_missing(tmp_path):
    """The zip of the folder above the package (`project/deployment_package/deployment.py`) unpacks to the
    package's folder inside its own: both said only that deployment.py was missing."""
    (tmp_path / "deployment_package" / "deep").mkdir(parents=True)
    (tmp_path / "deployment_package" / "deep" / "deployment.py").write_text("class Deployment: pass\n")
    (tmp_path / "deployment_package" / "deployment.py").write_text("class Deployment: pass\n")
    hint = ("(the package holds one at deployment_package/deployment.py: the package is the folder that holds "
            "deployment.py; zip that folder, not the one above it)")
    with pytest.raises(PackageCheckError) as error:
        check_deployment_class(tmp_path)
    assert str(error.value) == f"deployment.py is missing; UbiOps runs the class Deployment from it {hint}"
    with pytest.raises(FileNotFoundError) as failure:
        loader.import_deployment_module(tmp_path, "deployment.py")
    assert str(failure.value) == f"the package has no deployment.py {hint}"


def test_a_missing_deployment_py_of_a_zip_named_with_backslashes_says_so(tmp_path):
    """A zip written with Windows' separators unpacks to files named `deployment_package\\deployment.py`."""
    (tmp_path / "deployment_package\\deployment.py").write_text("class Deployment: pass\n")
    with pytest.raises(PackageCheckError) as error:
        check_deployment_class(tmp_path)
    assert str(error.value) == (
        "deployment.py is missing; UbiOps runs the class Deployment from it (the zip names its entries with "
        "backslashes, as deployment_package\\deployment.py, where a zip's folders are separated by '/': zip the "
        "package again with `python -m deployer package`, `ubiops.utils.zip_dir` or a tool that writes '/')")
    with pytest.raises(FileNotFoundError, match=r"the package has no deployment.py \(the zip names its entries"):
        loader.import_deployment_module(tmp_path, "deployment.py")
