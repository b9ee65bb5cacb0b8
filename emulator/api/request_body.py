"""A request's body turned into request data: JSON, plain text, or multipart for curl users.

The SDK sends structured data as `application/json` and plain data as `text/plain`. Multipart is the
emulator's convenience (`curl -F img=@portrait.jpg`): a file part per `file` field, saved in the
request's work folder and passed on as its local path, and a form value per other field, coerced
by the spec. As in UbiOps' web form, a field left out takes its widget's configured default.
A body that cannot be read is a 4xx; a value of the wrong type is a failed request.
"""

from __future__ import annotations

import shutil
from pathlib import Path, PurePath
from typing import Any

from fastapi import Request
from starlette.datastructures import UploadFile

from contract.spec import Field, Spec, coerce_form_value, loads_strict
from emulator.api.errors import ApiError

JSON_TYPES = ("application/json",)
TEXT_TYPES = ("text/plain", "")


async def read_request_data(request: Request, spec: Spec, work_dir: Path) -> Any:
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type == "multipart/form-data":
        return await _read_form(request, spec, work_dir)
    body = await request.body()
    if media_type in JSON_TYPES or media_type.endswith("+json"):
        return parse_json(body)
    if media_type in TEXT_TYPES:
        if spec.kind == "structured":
            return parse_json(body)
        try:
            return body.decode("utf-8")
        except UnicodeDecodeError:
            raise ApiError(400, "The request body is not valid UTF-8 text") from None
    raise ApiError(
        415,
        f"Unsupported Content-Type {media_type!r}: send application/json, text/plain (plain input) "
        "or multipart/form-data (one part per input field)",
    )


def parse_json(body: bytes) -> Any:
    if not body.strip():
        raise ApiError(400, "The request body is empty; send the request data as JSON")
    try:
        return loads_strict(body)
    except (ValueError, RecursionError) as exc:
        raise ApiError(400, f"The request body is not valid JSON: {exc}") from None


async def _read_form(request: Request, spec: Spec, work_dir: Path) -> dict[str, Any]:
    if spec.kind == "plain":
        raise ApiError(400, "This deployment's input is plain text: send it as text/plain, not as a form")
    form = await request.form()
    try:
        data: dict[str, Any] = {}
        for name in dict.fromkeys(form.keys()):
            field = spec.field(name)
            if field is None:
                raise ApiError(400, f"Unknown form field {name!r}; the input fields are {', '.join(spec.names)}")
            data[name] = _form_value(field, form.getlist(name), work_dir)
        for field in spec.fields:
            default = field.form_default
            if field.name not in data and default is not None:
                data[field.name] = coerce_form_value(field, default) if isinstance(default, str) else default
        return data
    finally:
        await form.close()


def _form_value(field: Field, values: list[Any], work_dir: Path) -> Any:
    uploads = [v for v in values if isinstance(v, UploadFile)]
    if not uploads:
        if len(values) > 1:
            raise ApiError(400, f"Form field {field.name!r} was sent {len(values)} times; send it once")
        return coerce_form_value(field, values[0])
    if not field.is_file:
        raise ApiError(400, f"Form field {field.name!r} is of type {field.data_type}: send a value, not a file")
    if len(uploads) != len(values):
        raise ApiError(400, f"Form field {field.name!r} mixes files and values; send only files")
    if field.data_type == "file" and len(uploads) > 1:
        raise ApiError(400, f"Form field {field.name!r} takes one file, but {len(uploads)} were sent")
    paths = [_save(upload, work_dir / "uploads" / field.name / str(n)) for n, upload in enumerate(uploads)]
    return paths[0] if field.data_type == "file" else paths


def _save(upload: UploadFile, folder: Path) -> str:
    """Keep the client's file name (as UbiOps keeps it), reduced to a safe base name."""
    name = PurePath((upload.filename or "").replace("\\", "/").replace("\x00", "")).name or "upload"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    with path.open("wb") as sink:
        shutil.copyfileobj(upload.file, sink)
    return str(path)
