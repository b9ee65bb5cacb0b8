"""A request's body turned into request data: JSON, plain text, or multipart for curl users.

The SDK sends structured data as `application/json` and plain data as `text/plain`. Multipart is the
emulator's convenience (`curl -F img=@portrait.jpg`): a file part per `file` field, stored in the
default bucket and passed on as its URI, and a form value per other field, coerced by the spec. As in
UbiOps' web form, a field left out takes its widget's configured default.
A body that cannot be read is a 4xx; a value of the wrong type is a failed request.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import PurePosixPath
from typing import Any

from fastapi import Request
from starlette.datastructures import UploadFile

from contract.files import DEFAULT_BUCKET, file_uri, numbered_names, storable_name
from contract.spec import Field, Spec, coerce_form_value, json_value_problem, loads_strict
from emulator.api.dependencies import services_of
from emulator.api.errors import ApiError
from emulator.storage import Storage, file_work

JSON_TYPES = ("application/json",)
TEXT_TYPES = ("text/plain", "")
_FORM_NAME_ESCAPES = {"%22": '"', "%0D": "\r", "%0A": "\n"}
"""What browsers and curl write for `"`, CR and LF in a part's name or file name, and for nothing
else (the HTML spec's multipart/form-data encoding): a `%` otherwise is itself."""
_FORM_NAME_ESCAPE = re.compile("|".join(_FORM_NAME_ESCAPES))
INLINE_PARSE_BYTES = 64 * 1024
"""JSON up to this size is parsed and checked on the event loop (64 kB takes 1-2 ms), larger JSON in a
thread (a hop costs ~0.05 ms), so that other calls go on meanwhile: a body of 20 MB held them all for
seconds. Not all the while: json's C parser keeps Python's lock until it is done (~1.5 s for 90 MB)."""


async def read_request_data(request: Request, spec: Spec, storage: Storage, request_id: str) -> Any:
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type == "multipart/form-data":
        return await _read_form(request, spec, _UploadSaver(storage, request_id))
    body = await request.body()
    if media_type in JSON_TYPES or media_type.endswith("+json"):
        return await read_json(body)
    if media_type in TEXT_TYPES:
        if spec.kind == "structured":  # the SDK sends a str as text/plain: say what it should have been
            try:
                return await read_json(body)
            except ApiError as exc:
                raise ApiError(400, f"{exc.message}. This deployment's input is structured: send a JSON object "
                                    f"of its input fields ({', '.join(spec.names)})") from None
        try:
            return body.decode("utf-8")
        except UnicodeDecodeError:
            raise ApiError(400, "The request body is not valid UTF-8 text") from None
    raise ApiError(
        415,
        f"Unsupported Content-Type {media_type!r}: send application/json, text/plain (plain input) "
        "or multipart/form-data (one part per input field)",
    )


async def read_json(body: bytes) -> Any:
    """`parse_json`, in a thread when the body is large."""
    return parse_json(body) if len(body) <= INLINE_PARSE_BYTES else await asyncio.to_thread(parse_json, body)


def parse_json(body: bytes) -> Any:
    if not body.strip():
        raise ApiError(400, "The request body is empty; send the request data as JSON")
    try:
        data = loads_strict(body)
    except (ValueError, RecursionError) as exc:
        raise ApiError(400, f"The request body is not valid JSON: {exc}") from None
    problem = json_value_problem(data)
    if problem:
        raise ApiError(400, f"The request body {problem}")
    return data


async def _read_form(request: Request, spec: Spec, saver: _UploadSaver) -> dict[str, Any]:
    if spec.kind == "plain":
        raise ApiError(400, "This deployment's input is plain text: send it as text/plain, not as a form")
    # A value as large as the same value sent as JSON: Starlette's own limit, 1 MB a value, answered
    # "Part exceeded maximum size of 1024KB." (the body as a whole stays within --max-upload-mb).
    form = await request.form(max_part_size=services_of(request).settings.max_upload_mb * 1024**2)
    try:
        sent: dict[str, list[Any]] = {}
        for encoded, value in form.multi_items():
            sent.setdefault(_form_name(encoded), []).append(value)
        data: dict[str, Any] = {}
        for name, values in sent.items():
            field = spec.field(name)
            if field is None:
                raise ApiError(400, f"Unknown form field {name!r}; the input fields are {', '.join(spec.names)}")
            data[name] = await _form_value(field, values, saver)
        for field in spec.fields:
            default = field.form_default
            if field.name not in data and default is not None:
                data[field.name] = coerce_form_value(field, default) if isinstance(default, str) else default
        return data
    finally:
        await form.close()


def _form_name(encoded: str) -> str:
    """A part's name or file name as the client meant it: starlette leaves the form encoding's escapes in."""
    return _FORM_NAME_ESCAPE.sub(lambda escape: _FORM_NAME_ESCAPES[escape.group()], encoded)


async def _form_value(field: Field, values: list[Any], saver: _UploadSaver) -> Any:
    uploads = [v for v in values if isinstance(v, UploadFile)]
    if not uploads:
        if len(values) > 1:
            raise ApiError(400, f"Form field {field.name!r} was sent {len(values)} times; send it once")
        if len(values[0]) <= INLINE_PARSE_BYTES:
            return coerce_form_value(field, values[0])
        return await asyncio.to_thread(coerce_form_value, field, values[0])
    if not field.is_file:
        raise ApiError(400, f"Form field {field.name!r} is of type {field.data_type}: send a value, not a file")
    if len(uploads) != len(values):
        raise ApiError(400, f"Form field {field.name!r} mixes files and values; send only files")
    if field.data_type == "file" and len(uploads) > 1:
        raise ApiError(400, f"Form field {field.name!r} takes one file, but {len(uploads)} were sent")
    uris = [await saver.save(upload) for upload in uploads]
    return uris[0] if field.data_type == "file" else uris


class _UploadSaver:
    """Stores each uploaded file in the default bucket, as a UbiOps client would upload it first;
    the request then carries its URI, so its input stays retrievable like any other."""

    def __init__(self, storage: Storage, request_id: str) -> None:
        self.storage = storage
        self.request_id = request_id
        self._taken: set[str] = set()

    async def save(self, upload: UploadFile) -> str:
        """Keep the client's file name, reduced to a storable base name (of a Windows client's path too) and
        numbered if an earlier file of the request has it; a large file is stored in a thread."""
        name = storable_name(PurePosixPath(_form_name(upload.filename or "").replace("\\", "/")).name)
        name = "upload" if name in ("", "..") else name  # `.` has no base name, `a/..` has `..`: neither is a file's
        name = next(n for n in numbered_names(name) if n not in self._taken)
        self._taken.add(name)
        stored = await file_work(upload.size or 0, self.storage.write_request_input, self.request_id, name, upload.file)
        return file_uri(DEFAULT_BUCKET, stored)
