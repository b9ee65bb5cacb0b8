"""One rule for how UbiOps calls a deployment (`contract.calling`): the deployer's static check of
`deployment.py` accepts exactly the signatures the emulator's loader can call."""

from __future__ import annotations

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
]


def check_accepts(tmp_path, init: str, method: str) -> bool:
    (tmp_path / "deployment.py").write_text(f"class Deployment:\n    {init}\n    {method}\n")
    try:
        check_deployment_class(tmp_path)
    except PackageCheckError:
        return False
    return True


def loader_runs(tmp_path, init: str, method: str) -> bool:
    module = loader.import_deployment_module(tmp_path, "deployment.py")
    try:
        deployment = loader.instantiate(module, tmp_path, {"deployment": "d"})
        loader.dispatch(deployment, {"x": 1}, {"id": "r1"})
    except (TypeError, loader.RequestError):
        return False
    return True


@pytest.mark.parametrize("init, method", SIGNATURES)
def test_the_check_accepts_exactly_what_the_loader_can_call(tmp_path, init, method):
    assert check_accepts(tmp_path, init, method) == loader_runs(tmp_path, init, method)


def test_a_request_with_context_and_a_third_parameter_is_refused_with_the_reason(tmp_path):
    (tmp_path / "deployment.py").write_text(
        "class Deployment:\n    def request(self, data, context, verbose=False):\n        return data\n")
    with pytest.raises(PackageCheckError) as error:
        check_deployment_class(tmp_path)
    assert str(error.value) == (
        "deployment.py line 2: Deployment.request: UbiOps would call it with (data), which fails: "
        "missing a required argument: 'context'")
