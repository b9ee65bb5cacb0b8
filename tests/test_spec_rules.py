"""The type rules of `contract.spec`, checked exhaustively against a table written independently:
every spec type against every kind of JSON value."""

from __future__ import annotations

import pytest

from contract.spec import DATA_TYPES, check_input, check_output, parse_fields
from emulator.signing import Signer

SAMPLES = {
    "null": None, "bool": True, "int": 3, "big int": 2**63, "float": 2.5, "string": "s", "empty list": [],
    "int list": [1, 2], "float list": [0.5, 1], "string list": ["a"], "mixed list": [1, "a"], "null list": [None],
    "object": {"k": 1},
    # JSON's `1` and 400 zeros: an int past a double's range, which a double took (and a form value was a 500)
    "huge int": 10**400, "huge int list": [0.5, -(10**400)],
}
ACCEPTS = {
    "int": {"int"},
    "double": {"int", "float", "big int"},
    "string": {"string"},
    "file": {"string"},
    "bool": {"bool"},
    "dict": {"object"},
    "array_int": {"empty list", "int list"},
    "array_double": {"empty list", "int list", "float list"},
    "array_string": {"empty list", "string list"},
    "array_file": {"empty list", "string list"},
}


@pytest.mark.parametrize("data_type", DATA_TYPES)
@pytest.mark.parametrize("sample", SAMPLES)
def test_each_type_accepts_exactly_its_json_kinds(data_type, sample):
    spec = parse_fields([{"name": "f", "data_type": {"label": data_type, "value": data_type}}])
    accepted = sample in ACCEPTS[data_type]
    try:
        check_input(spec, {"f": SAMPLES[sample]})
    except ValueError as exc:
        assert not accepted, f"{data_type} should accept {sample}: {exc}"
        assert "'f'" in str(exc) and data_type in str(exc), "the message names the field and the type"
    else:
        assert accepted, f"{data_type} should refuse {sample}"


@pytest.mark.parametrize("data_type", DATA_TYPES)
def test_null_is_accepted_for_every_output_field_but_no_input_field(data_type):
    spec = parse_fields([{"name": "f", "data_type": data_type}])
    assert check_output(spec, {"f": None}) == {"f": None}
    with pytest.raises(ValueError):
        check_input(spec, {"f": None})


def test_a_signed_url_expires_and_is_bound_to_method_and_path():
    signer = Signer()
    query = dict(pair.split("=") for pair in signer.query("GET", "default/a.txt").split("&"))
    assert signer.verify("GET", "default/a.txt", query["expires"], query["signature"])
    assert not signer.verify("PUT", "default/a.txt", query["expires"], query["signature"])
    assert not signer.verify("GET", "default/b.txt", query["expires"], query["signature"])
    expired = dict(pair.split("=") for pair in signer.query("GET", "default/a.txt", lifetime=-1).split("&"))
    assert not signer.verify("GET", "default/a.txt", expired["expires"], expired["signature"])
    assert not Signer().verify("GET", "default/a.txt", query["expires"], query["signature"]), "a restart voids URLs"
