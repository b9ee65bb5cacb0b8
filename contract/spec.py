"""Input and output fields of a deployment, and the checks applied to request data.

A package describes its fields in `ubiops_input_spec.json` / `ubiops_output_spec.json`: a JSON list
of `{"name": ..., "data_type": {"label": ..., "value": "int"}}` (or `"data_type": "int"`). No file,
or an empty list, means the `plain` type: a string in, a string out.

UbiOps does not document its server-side checks, so these are the emulator's rules (README,
"Differences from UbiOps"):

- a structured request is a JSON object; every spec field must be present; extra keys are dropped;
- `int` takes whole JSON numbers in the signed 64-bit range, never `true`/`false`;
- `double` takes ints or floats, never NaN, Infinity or an int past a double's range;
- `string`, `bool`, `dict` take their JSON type; `file` takes a string (a `ubiops-file://` URI on
  the way in, a local path on the way out);
- `array_<type>` takes a list whose every item is of `<type>`;
- output is checked the same way, except that any output field may be `null`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from contract.names import MAX_NAME_LENGTH
from contract.text import LONE_SURROGATE, is_unicode_text

MAX_JSON_DEPTH = 100
"""How deeply a request's objects and arrays may nest."""
SCALAR_TYPES = ("int", "double", "string", "bool", "dict", "file")
DATA_TYPES = SCALAR_TYPES + tuple(f"array_{t}" for t in ("int", "double", "string", "file"))
FILE_TYPES = ("file", "array_file")
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
PLAIN = "plain"
"""UbiOps' `input_type` / `output_type` without fields: the data is one string."""
_USUAL_ITEM: dict[str, type[Any]] = {"int": int, "double": float, "string": str, "file": str}
"""The type of JSON value an array's items mostly are, by item type (an `int` in an array of doubles is
the unusual one: it is checked the long way, and passes)."""


class SpecError(ValueError):
    """A spec file or field list that UbiOps would not accept."""


class DataError(ValueError):
    """Request data that does not match the spec; the message names the field and the type."""


@dataclass(frozen=True)
class Field:
    name: str
    data_type: str
    widget: dict[str, Any] | None = None

    @property
    def is_file(self) -> bool:
        return self.data_type in FILE_TYPES

    @property
    def form_default(self) -> Any:
        """The widget's `configuration.default`: what UbiOps' web form pre-fills (None if unset)."""
        return ((self.widget or {}).get("configuration") or {}).get("default")


@dataclass(frozen=True)
class Spec:
    fields: tuple[Field, ...] = ()

    @property
    def kind(self) -> str:
        """UbiOps' `input_type` / `output_type`: `plain` when there are no fields."""
        return "structured" if self.fields else PLAIN

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.fields]

    def field(self, name: str) -> Field | None:
        return next((f for f in self.fields if f.name == name), None)

    def to_api(self) -> list[dict[str, Any]]:
        """The fields as the UbiOps API shows them: `{name, data_type, widget}`."""
        return [{"name": f.name, "data_type": f.data_type, "widget": f.widget} for f in self.fields]


class NamedField(Protocol):
    """A field as any side holds it: a `Field` here, an `InputOutputFieldDetail` from the SDK."""

    @property
    def name(self) -> str: ...

    @property
    def data_type(self) -> str: ...


def same_fields(first: Iterable[NamedField], second: Iterable[NamedField]) -> bool:
    """Whether two field lists declare the same names with the same data types in the same order
    (widgets aside): what a package's spec files and its deployment's fields must agree on, since
    every version of a deployment shares its fields."""
    return [(f.name, f.data_type) for f in first] == [(f.name, f.data_type) for f in second]


def widget_key(widget: Any) -> tuple[Any, tuple[tuple[str, str | None], ...]] | None:
    """A field's widget, as two sides compare it (None: no widget): a spec file's dict, or an API's
    answer read by the SDK (a model with `to_dict`). The SDK reads a widget's configuration as UbiOps
    types it, `dict(str, str)`, so `{"min": 0}` comes back `{"min": "0"}`: values compare as strings."""
    if hasattr(widget, "to_dict"):
        widget = widget.to_dict()
    if not isinstance(widget, dict):
        return None
    configuration = widget.get("configuration") or {}
    key = (widget.get("type"), tuple(sorted((str(k), None if v is None else str(v)) for k, v in configuration.items())))
    return None if key == (None, ()) else key


def widget_changes(first: Iterable[Any], second: Iterable[Any]) -> list[str]:
    """The names of the fields, present on both sides, whose widgets differ."""
    widgets = {f.name: widget_key(getattr(f, "widget", None)) for f in first}
    return [f.name for f in second if f.name in widgets and widgets[f.name] != widget_key(getattr(f, "widget", None))]


def parse_fields(raw: Any, source: str = "fields") -> Spec:
    """Parse a field list, from a spec file or from an API body; `source` names it in errors."""
    if raw is None:
        return Spec()
    if not isinstance(raw, list):
        raise SpecError(f"{source}: expected a list of fields, got {json_type(raw)}")
    problem = json_value_problem(raw)  # a field named with a lone surrogate would break every message naming it
    if problem:
        raise SpecError(f"{source}: the field list {problem}")
    fields: list[Field] = []
    for position, item in enumerate(raw):
        where = f"{source}[{position}]"
        if not isinstance(item, dict):
            raise SpecError(f"{where}: expected an object with 'name' and 'data_type'")
        name = item.get("name")
        if not isinstance(name, str) or not 1 <= len(name) <= MAX_NAME_LENGTH:
            raise SpecError(f"{where}: 'name' must be a string of 1 to {MAX_NAME_LENGTH} characters")
        data_type = item.get("data_type")
        if isinstance(data_type, dict):
            data_type = data_type.get("value")
        if data_type not in DATA_TYPES:
            raise SpecError(
                f"{where}: field {name!r} has data_type {data_type!r}; expected one of {', '.join(DATA_TYPES)}"
            )
        if any(f.name == name for f in fields):
            raise SpecError(f"{where}: field {name!r} is defined twice")
        widget = item.get("widget")
        if widget is not None and not isinstance(widget, dict):
            raise SpecError(f"{where}: field {name!r} has a widget that is not an object")
        fields.append(Field(name, data_type, widget))
    return Spec(tuple(fields))


def load_spec(path: Path) -> Spec:
    """Read a spec file; a missing file means plain."""
    if not path.is_file():
        return Spec()
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SpecError(f"{path.name}: not valid JSON ({exc})") from None
    return parse_fields(raw, path.name)


def check_input(spec: Spec, data: Any) -> Any:
    """Return the data a deployment receives, or raise DataError."""
    return _check(spec, data, "input", allow_null=False)


def check_output(spec: Spec, data: Any) -> Any:
    """Return the output a caller receives, or raise DataError: held to what an input is held to
    (`json_value_problem`), as it is stored and answered as JSON too (a dict nested 400 levels deep was
    a completed request whose direct answer was a 500)."""
    checked = _check(spec, data, "output", allow_null=True)
    if problem := json_value_problem(checked):
        raise DataError(f"The output {problem}")
    return checked


def _check(spec: Spec, data: Any, direction: str, allow_null: bool) -> Any:
    if spec.kind == PLAIN:
        if not isinstance(data, str):
            raise DataError(f"The {direction} type is plain, so the {direction} must be a string, not {json_type(data)}")
        return data
    if not isinstance(data, dict):
        raise DataError(
            f"The {direction} type is structured, so the {direction} must be an object with fields "
            f"{', '.join(spec.names)}; got {json_type(data)}"
        )
    checked: dict[str, Any] = {}
    for field in spec.fields:
        if field.name not in data:
            raise DataError(f"Missing {direction} field {field.name!r} of type {field.data_type}")
        value = data[field.name]
        if not (value is None and allow_null):
            problem = type_problem(field.data_type, value)
            if problem:
                raise DataError(f"{direction.capitalize()} field {field.name!r} must be of type {field.data_type}, {problem}")
        checked[field.name] = value
    return checked


def type_problem(data_type: str, value: Any) -> str | None:
    """Why `value` is not of `data_type` (None when it is)."""
    if data_type.startswith("array_"):
        if not isinstance(value, list):
            return f"but got {json_type(value)}"
        item_type = data_type.removeprefix("array_")
        usual = _USUAL_ITEM[item_type]
        for position, item in enumerate(value):
            if type(item) is usual and (usual is str or (INT64_MIN <= item <= INT64_MAX if usual is int else math.isfinite(item))):
                continue  # the usual item, passed without a call: with one, a million items took 0.2-0.5 s
            problem = type_problem(item_type, item)
            if problem:
                return f"but item {position} is not of type {item_type}: {problem.removeprefix('but ')}"
        return None
    if data_type == "int":
        if isinstance(value, float):  # 2.0 is a whole number, but not an int: which number it was says why
            return f"but got a float ({value!r})"
        if not isinstance(value, int) or isinstance(value, bool):
            return f"but got {json_type(value)}"
        if not INT64_MIN <= value <= INT64_MAX:
            return "but the integer is outside the signed 64-bit range"
        return None
    if data_type == "double":
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            return f"but got {json_type(value)}"
        if isinstance(value, float) and not math.isfinite(value):
            return "but got NaN or Infinity"
        if isinstance(value, int) and not _fits_a_double(value):
            return "but the number is beyond the range of a double"
        return None
    expected = {"string": str, "file": str, "bool": bool, "dict": dict}[data_type]
    return None if isinstance(value, expected) else f"but got {json_type(value)}"


def _fits_a_double(value: int) -> bool:
    """Whether an integer can be a double: JSON takes `1` followed by 400 zeros as an int, which a double
    field passed on as it was (`float()` of it raises OverflowError: a form value was a 500)."""
    try:
        float(value)
    except OverflowError:
        return False
    return True


def coerce_form_value(field: Field, text: str) -> Any:
    """Turn a multipart form value into the field's type (curl convenience: `-F n=3`, `-F flag=true`)."""
    data_type = field.data_type
    if data_type in ("string", "file"):
        return text
    if data_type == "bool":
        lowered = text.strip().lower()
        if lowered in ("true", "1"):
            return True
        if lowered in ("false", "0"):
            return False
        raise DataError(f"Form field {field.name!r} must be true or false, got {text!r}")
    try:
        value = loads_strict(text)
    except RecursionError:  # Python's parser gives up around a thousand levels, long past the limit
        raise DataError(f"Form field {field.name!r} nests objects and arrays deeper than {MAX_JSON_DEPTH} levels") from None
    except ValueError:
        raise DataError(f"Form field {field.name!r} must be of type {data_type}, got {text!r}") from None
    problem = type_problem(data_type, value)
    if problem:
        raise DataError(f"Form field {field.name!r} must be of type {data_type}, {problem}")
    if data_type == "double" and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)  # within range: type_problem refuses an int past a double's
    problem = json_value_problem(value)
    if problem:
        raise DataError(f"Form field {field.name!r} {problem}")
    return value


def loads_strict(text: str | bytes) -> Any:
    """JSON as the standard defines it: NaN and Infinity, which Python accepts, are refused."""
    return json.loads(text, parse_constant=_refuse_constant)


def json_value_problem(value: Any) -> str | None:
    """Why `value`, read from JSON text, cannot be request data (None when it can): it nests deeper
    than MAX_JSON_DEPTH, or holds what cannot be stored and sent on as JSON text: a number past a
    double's range (`1e400` reads as infinity) or a lone UTF-16 surrogate (`"\\ud800"`, which UTF-8
    cannot carry). Walked without recursion: the data may be hostile. Only containers go on the stack,
    and values are told apart by their exact type, as JSON gives them: a tuple per item made 30 million
    ints take 25 s."""
    stack: list[tuple[Iterable[Any], int]] = [((value,), 0)]  # items, and how deeply they are nested
    while stack:
        items, depth = stack.pop()
        for item in items:
            kind = type(item)
            if kind is float:
                if not math.isfinite(item):
                    return "holds a number beyond the range of a double"
            elif kind is str:
                if not is_unicode_text(item):
                    return f"holds a string with {LONE_SURROGATE}"
            elif kind is list or kind is dict:
                if depth >= MAX_JSON_DEPTH:
                    return f"nests objects and arrays deeper than {MAX_JSON_DEPTH} levels"
                stack.append((item, depth + 1))  # a dict's keys
                if kind is dict:
                    stack.append((item.values(), depth + 1))
    return None


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def json_type(value: Any) -> str:
    """The JSON name of a value's type, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return f"a {type(value).__name__}"
