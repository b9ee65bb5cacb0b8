"""Input that does not fit: transport problems are 4xx `{"error": ...}`; data that breaks the spec
is a failed request whose message names the field and the expected type."""

from __future__ import annotations

import json

import httpx
import pytest
from harness import DEPLOYMENT, PROJECT

VALID = {
    "int_in": 1, "double_in": 1.5, "string_in": "s", "bool_in": True, "dict_in": {},
    "file_in": "ubiops-file://default/none.png", "array_int_in": [], "array_double_in": [], "array_string_in": [],
}


@pytest.fixture(scope="module")
def echo(emulators):
    return emulators("echo")


def post(echo, url: str | None = None, **kwargs) -> httpx.Response:
    return httpx.post(url or echo.requests_url(), timeout=30, **kwargs)


@pytest.mark.parametrize("field, value, message", [
    ("int_in", "1", "Input field 'int_in' must be of type int, but got a string"),
    ("int_in", True, "Input field 'int_in' must be of type int, but got a boolean"),
    ("int_in", 1.5, "Input field 'int_in' must be of type int, but got a float (1.5)"),
    ("int_in", 2.0, "Input field 'int_in' must be of type int, but got a float (2.0)"),  # was "but got a number"
    ("int_in", 2**64, "Input field 'int_in' must be of type int, but the integer is outside the signed 64-bit range"),
    ("double_in", "1.5", "Input field 'double_in' must be of type double, but got a string"),
    ("double_in", False, "Input field 'double_in' must be of type double, but got a boolean"),
    pytest.param("double_in", 10**400, "Input field 'double_in' must be of type double, but the number is beyond the range "
                 "of a double", id="double_in-huge-int"),
    ("array_double_in", [1.5, -(10**400)], "Input field 'array_double_in' must be of type array_double, but item 1 is "
     "not of type double: the number is beyond the range of a double"),
    ("string_in", 3, "Input field 'string_in' must be of type string, but got an integer"),
    ("bool_in", 1, "Input field 'bool_in' must be of type bool, but got an integer"),
    ("dict_in", [], "Input field 'dict_in' must be of type dict, but got an array"),
    ("file_in", 5, "Input field 'file_in' must be of type file, but got an integer"),
    ("array_int_in", [1, "2"], "Input field 'array_int_in' must be of type array_int, but item 1 is not of type int: got a string"),
    ("array_double_in", 1.0, "Input field 'array_double_in' must be of type array_double, but got a number"),
    ("array_string_in", [None], "Input field 'array_string_in' must be of type array_string, but item 0 is not of type string: got null"),
    ("string_in", None, "Input field 'string_in' must be of type string, but got null"),
])
def test_wrong_type_fails_the_request_naming_field_and_type(echo, field, value, message):
    body = echo.sdk().deployment_requests_create(PROJECT, DEPLOYMENT, data={**VALID, field: value})
    assert (body.status, body.success, body.error_message) == ("failed", False, message)


def test_missing_field_fails_the_request(echo):
    data = {k: v for k, v in VALID.items() if k != "bool_in"}
    body = echo.sdk().deployment_requests_create(PROJECT, DEPLOYMENT, data=data)
    assert body.status == "failed" and body.error_message == "Missing input field 'bool_in' of type bool"


def test_structured_input_must_be_an_object(echo):
    body = post(echo, json="just text").json()
    assert body["status"] == "failed" and body["error_message"].startswith(
        "The input type is structured, so the input must be an object with fields int_in, double_in")


def test_file_field_needs_a_uri_or_an_upload(echo):
    body = post(echo, json={**VALID, "file_in": "/etc/passwd"}).json()
    assert body["status"] == "failed" and "must be a ubiops-file:// URI" in body["error_message"]
    body = post(echo, json=VALID).json()
    assert body["error_message"] == "Input field 'file_in': file ubiops-file://default/none.png does not exist"


@pytest.mark.parametrize("content, headers, status, message", [
    (b'{"int_in": 1,', {"Content-Type": "application/json"}, 400, "The request body is not valid JSON"),
    (b"", {"Content-Type": "application/json"}, 400, "The request body is empty"),
    (b'{"double_in": NaN}', {"Content-Type": "application/json"}, 400, "NaN is not valid JSON"),
    (b"\xff\xfe", {"Content-Type": "application/json"}, 400, "The request body is not valid JSON"),
    (b"x=1", {"Content-Type": "application/x-www-form-urlencoded"}, 415, "Unsupported Content-Type"),
    (b"[" * 100_000, {"Content-Type": "application/json"}, 400, "The request body is not valid JSON"),
    (b'{"dict_in": {"x": -1e400}}', {"Content-Type": "application/json"}, 400,
     "The request body holds a number beyond the range of a double"),
    (b'{"string_in": "a \\ud800"}', {"Content-Type": "application/json"}, 400,
     "The request body holds a string with a lone UTF-16 surrogate, which is not Unicode text"),
    (b'{"dict_in": {"\\udfff": 1}}', {"Content-Type": "text/plain"}, 400, "lone UTF-16 surrogate"),
    (b"just text", {"Content-Type": "text/plain"}, 400, "This deployment's input is structured: send a JSON object "
     "of its input fields (int_in, double_in"),  # what the SDK sends for data="just text"
])
def test_unreadable_body_is_a_4xx_in_ubiops_error_shape(echo, content, headers, status, message):
    response = post(echo, content=content, headers=headers)
    assert response.status_code == status
    assert set(response.json()) == {"error"} and message in response.json()["error"]


def test_a_batch_with_an_item_json_cannot_carry_is_refused_whole(echo):
    """Refused before any item is recorded: none is left pending (the other items once were, forever)."""
    url, before = f"{echo.requests_url()}/batch", echo.sdk().deployment_requests_list(PROJECT, DEPLOYMENT, status="pending")
    response = post(echo, url=url, content=b'[{"int_in": 1}, {"dict_in": {"x": 1e400}}]',
                    headers={"Content-Type": "application/json"})
    assert (response.status_code, response.json()) == (400, {"error": "The request body holds a number beyond the range of a double"})
    assert echo.sdk().deployment_requests_list(PROJECT, DEPLOYMENT, status="pending") == before


def test_a_form_value_json_cannot_carry_fails_the_request(echo):
    body = post(echo, files=[("file_in", ("a.jpg", b"x")), ("dict_in", (None, '{"x": 1e999}'))]).json()
    assert (body["status"], body["error_message"]) == ("failed", "Form field 'dict_in' holds a number beyond the range of a double")


def test_bad_query_parameter_is_a_400(echo):
    response = httpx.post(echo.requests_url(), params={"timeout": "soon"}, json=VALID)
    assert response.status_code == 400 and "timeout" in response.json()["error"]


@pytest.mark.parametrize("files, data, status, message", [
    ({"portrait": ("a.jpg", b"x")}, {}, 400, "Unknown form field 'portrait'; the input fields are int_in,"),
    ([("file_in", ("a.jpg", b"x")), ("file_in", ("b.jpg", b"y"))], {}, 400, "Form field 'file_in' takes one file, but 2 were sent"),
    ({"int_in": ("a.txt", b"1")}, {}, 400, "Form field 'int_in' is of type int: send a value, not a file"),
])
def test_malformed_multipart_is_a_400(echo, files, data, status, message):
    response = post(echo, files=files, data=data)
    assert response.status_code == status and response.json()["error"].startswith(message), response.text


def multipart(values: list[tuple[str, str]]) -> dict:
    """A form of text values only, sent as multipart (httpx would send it urlencoded)."""
    parts = "".join(f'--xyz\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n' for k, v in values)
    return {"content": f"{parts}--xyz--\r\n".encode(), "headers": {"Content-Type": "multipart/form-data; boundary=xyz"}}


def test_repeated_form_value_is_a_400(echo):
    response = post(echo, **multipart([("int_in", "1"), ("int_in", "2")]))
    assert response.status_code == 400 and response.json() == {"error": "Form field 'int_in' was sent 2 times; send it once"}


@pytest.mark.parametrize("field, text, message", [
    ("bool_in", "maybe", "Form field 'bool_in' must be true or false, got 'maybe'"),
    ("int_in", "3.5", "Form field 'int_in' must be of type int, but got a float (3.5)"),
    # float() of it raised OverflowError: a 500, "Internal error in the emulator"
    ("double_in", "1" + "0" * 400, "Form field 'double_in' must be of type double, but the number is beyond the range of a double"),
    ("array_double_in", "[0.5, 1" + "0" * 400 + "]", "Form field 'array_double_in' must be of type array_double, but item 1 "
     "is not of type double: the number is beyond the range of a double"),
    ("array_int_in", "1,2", "Form field 'array_int_in' must be of type array_int, got '1,2'"),
    ("dict_in", '{"a": ' * 101 + "1" + "}" * 101, "Form field 'dict_in' nests objects and arrays deeper than 100 levels"),
    # past Python's own parser, which raised RecursionError: the answer was a 500
    ("dict_in", "[" * 100_000 + "]" * 100_000, "Form field 'dict_in' nests objects and arrays deeper than 100 levels"),
])
def test_uncoercible_form_value_fails_the_request(echo, field, text, message):
    """The failed request holds no data, so the file sent before the value is not kept either."""
    body = post(echo, files=[("file_in", ("a.jpg", b"x")), (field, (None, text))]).json()
    assert body["status"] == "failed" and body["error_message"] == message
    bucket = echo.data_dir / "buckets" / "default"
    assert bucket.is_dir() and not (bucket / "deployment_requests" / body["id"]).exists()


def test_a_form_value_over_1_mb_is_taken_as_its_json_would_be(echo):
    """Starlette's own limit refused it: 400 "Part exceeded maximum size of 1024KB."."""
    values = [(k, json.dumps(v)) for k, v in {**VALID, "array_int_in": list(range(300_000))}.items() if k != "file_in"]
    assert len(dict(values)["array_int_in"]) > 2 * 1024**2
    body = post(echo, files={"file_in": ("a.jpg", b"x")}, data=dict(values)).json()
    assert body.get("status") == "completed", body
    assert body["result"]["array_int_out"] == list(range(300_000))


def test_multipart_without_the_file_fails_naming_the_field(echo):
    values = [(k, json.dumps(v) if not isinstance(v, str) else v) for k, v in VALID.items() if k != "file_in"]
    body = post(echo, **multipart(values)).json()
    assert body["status"] == "failed" and body["error_message"] == "Missing input field 'file_in' of type file"


def test_form_fields_left_out_take_their_widget_default_as_in_the_web_form(echo):
    values = [(k, json.dumps(v)) for k, v in VALID.items() if k not in ("file_in", "string_in", "bool_in")]
    body = post(echo, files={"file_in": ("a.jpg", b"x")}, data=dict(values)).json()
    assert body["status"] == "completed", body
    assert (body["result"]["string_out"], body["result"]["bool_out"]) == ("from the widget", True)


def test_json_requests_get_no_widget_defaults(echo):
    data = {k: v for k, v in VALID.items() if k != "string_in"}
    body = echo.sdk().deployment_requests_create(PROJECT, DEPLOYMENT, data=data)
    assert body.status == "failed" and body.error_message == "Missing input field 'string_in' of type string"
