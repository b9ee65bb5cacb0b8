"""One deployment request from accepted input to final status, between the HTTP layer and the instances.

Checks the input against the spec, hands file inputs to the deployment as local copies, runs the
request on the version's instances, then checks the output and stores output files in the bucket.
A problem with the data is a `failed` request with a clear message, as on UbiOps, never an HTTP error.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from contract.spec import DataError, Spec, check_input, check_output, json_type
from emulator.state import EMULATOR_USER_ID, Deployment, Version
from emulator.storage import Storage, StorageError, is_uri

COMPLETED, FAILED = "completed", "failed"


@dataclass(frozen=True)
class Outcome:
    status: str
    result: Any = None
    error_message: str | None = None
    files: tuple[Path, ...] = ()

    @property
    def success(self) -> bool:
        return self.status == COMPLETED


class RequestRunner:
    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    async def run(
        self, deployment: Deployment, version: Version, request_id: str, data: Any, timeout: int, mode: str = "express"
    ) -> Outcome:
        """Run a request; raises VersionUnavailable when the version cannot start.

        Input files are copied into the request's work folder, which the caller removes afterwards.
        """
        batch = deployment.input_spec.kind == "structured" and isinstance(data, list)
        try:
            if batch:
                data = [_numbered(n, self._prepare_input, deployment.input_spec, request_id, item) for n, item in enumerate(data)]
            else:
                data = self._prepare_input(deployment.input_spec, request_id, data)
            reply = await version.pool.submit(
                {
                    "data": data,
                    "context": {"id": request_id, "request_mode": mode, "user_id": EMULATOR_USER_ID},
                    "output_dir": str(self.storage.request_output_dir(request_id)),
                },
                timeout,
            )
            if "error" in reply:
                return Outcome(FAILED, error_message=reply["error"])
            files: list[Path] = []
            result = reply["result"]
            if batch:
                if not isinstance(result, list):
                    raise DataError(f"The input was a list, so the output must be a list too; got {json_type(result)}")
                result = [_numbered(n, self._finish_output, deployment.output_spec, request_id, item, files) for n, item in enumerate(result)]
            else:
                result = self._finish_output(deployment.output_spec, request_id, result, files)
            return Outcome(COMPLETED, result=result, files=tuple(files))
        except (DataError, StorageError) as exc:
            return Outcome(FAILED, error_message=str(exc))

    def _prepare_input(self, spec: Spec, request_id: str, item: Any) -> Any:
        item = check_input(spec, item)
        for field in spec.fields:
            if field.data_type == "file":
                item[field.name] = self._input_file(request_id, field.name, item[field.name])
            elif field.data_type == "array_file":
                item[field.name] = [self._input_file(request_id, field.name, v) for v in item[field.name]]
        return item

    def _input_file(self, request_id: str, field: str, value: str) -> str:
        """A local path for a file input: an upload of this request, or a copy of a bucket file."""
        work = self.storage.request_work_dir(request_id)
        if Path(value).is_absolute() and Path(value).resolve().is_relative_to(work):
            return value
        if not is_uri(value):
            raise DataError(
                f"Input field {field!r} must be a ubiops-file:// URI (upload the file first) "
                f"or a file part of a multipart request; got {value!r}"
            )
        try:
            source = self.storage.resolve_uri(value)
        except StorageError as exc:
            raise DataError(f"Input field {field!r}: {exc}") from None
        target = work / "files" / field / source.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        return str(target)

    def _finish_output(self, spec: Spec, request_id: str, item: Any, files: list[Path]) -> Any:
        item = check_output(spec, item)
        if spec.kind == "plain":
            return item
        output_dir = self.storage.request_output_dir(request_id)
        for field in spec.fields:
            value = item[field.name]
            if value is None:
                continue
            if field.data_type == "file":
                item[field.name] = self._output_uri(field.name, value, output_dir, files)
            elif field.data_type == "array_file":
                item[field.name] = [self._output_uri(field.name, v, output_dir, files) for v in value]
        return item

    def _output_uri(self, field: str, value: str, output_dir: Path, files: list[Path]) -> str:
        path = Path(value)
        if not (path.is_absolute() and path.parent == output_dir and path.is_file()):
            raise DataError(f"Output field {field!r} must be the path of an existing file; no file at {value!r}")
        files.append(path)
        return self.storage.uri(path)



def _numbered(position: int, function: Callable[..., Any], *args: Any) -> Any:
    """Run `function`, naming the list item in the message of a DataError."""
    try:
        return function(*args)
    except DataError as exc:
        raise DataError(f"Item {position}: {exc}") from None
