"""Deployment requests, between the HTTP layer and the instances: the backend the request routes call.

A request goes from accepted input to final status: its input is checked against the spec, file
inputs reach the deployment as local copies (made in a thread), it runs on the version's instances,
then its output is checked and output files are kept in the bucket. Every request is recorded as the
version's retention mode asks (batch requests always, so they can be collected); the rules of that
history (which statuses can be listed, what was kept, what can be cancelled or deleted) are here too.
A problem with the data is a `failed` request with a clear message, as on UbiOps. Each request that
ends is counted (`emulator.metrics`) and logged, in one line.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from contract.files import FILE_URI_SCHEME, is_file_uri, map_files
from contract.requests import (
    CANCELLED,
    COMPLETED,
    FAILED,
    KEEP_ALL,
    KEEP_NOTHING,
    PENDING,
    PROCESSING,
    STATUSES,
    UNFINISHED,
)
from contract.spec import DataError, Spec, check_input, check_output, json_type
from emulator.exceptions import NotAllowed, NotFound
from emulator.metrics import Metrics
from emulator.request_store import RequestRecord, RequestStore
from emulator.runtime.manager import Runtime
from emulator.runtime.pool import VersionUnavailable
from emulator.runtime.protocol import Error, Job, RequestContext
from emulator.state import EMULATOR_USER_ID, Deployment, Version, new_id, now
from emulator.storage import Storage, StorageError

DIRECT, BATCH = "direct", "batch"
MAX_BATCH_ITEMS = 250
log = logging.getLogger("emulator.requests")


@dataclass(frozen=True)
class Outcome:
    record: RequestRecord
    files: tuple[str, ...] = ()
    """The URIs of the output files."""


class RequestRunner:
    def __init__(self, storage: Storage, store: RequestStore, runtime: Runtime, metrics: Metrics) -> None:
        self.storage = storage
        self.store = store
        self.runtime = runtime
        self.metrics = metrics
        self._batch_tasks: dict[str, asyncio.Task[Outcome]] = {}
        self._instances: dict[str, int] = {}
        """The instance (its number) each running request runs on, for the line logged when it ends."""

    def new_record(self, deployment: Deployment, version: Version, request_id: str, data: Any, timeout: int, mode: str
                   ) -> RequestRecord:
        """A `pending` request, stored unless the version's retention mode is `none` (batch: always)."""
        retention = KEEP_ALL if mode == BATCH else version.request_retention_mode
        record = RequestRecord(
            id=request_id, project=deployment.project, deployment=deployment.name, version=version.name, mode=mode,
            status=PENDING, timeout=timeout, time_created=now(), keeps_data=retention == KEEP_ALL,
            stored=retention != KEEP_NOTHING, request_data=data, input_size=_size(data),
        )
        if record.stored:
            self.store.add(record)
        return record

    async def run(
        self,
        deployment: Deployment,
        version: Version,
        record: RequestRecord,
        on_update: Callable[[str], None] | None = None,
    ) -> Outcome:
        """Run a recorded request to its end; raises VersionUnavailable (the record failed with the
        reason) when the version cannot start. A request that already ended (its body did not fit its
        fields) is answered as it is.
        """
        if record.status != PENDING:
            return Outcome(record)
        # Only file inputs are copied (in a thread): a thread hop costs ~0.1 ms, a trivial request's
        # server CPU ~0.5 ms (BENCHMARKS.md).
        has_files = any(field.is_file for field in deployment.input_spec.fields)
        try:
            try:
                if has_files:
                    data = await asyncio.to_thread(self._prepare_input, deployment.input_spec, record.id, record.request_data)
                else:
                    data = self._prepare_input(deployment.input_spec, record.id, record.request_data)
            except (DataError, StorageError) as exc:
                return self.fail(record, str(exc))
            try:
                reply = await self.runtime.pool(version).submit(
                    Job(
                        data=data,
                        context=RequestContext(id=record.id, request_mode="express" if record.mode == DIRECT else "batch",
                                               user_id=EMULATOR_USER_ID),
                        output_dir=str(self.storage.request_output_dir(record.id)),
                    ),
                    record.timeout,
                    on_start=lambda instance: self._started(record, instance),
                    on_update=on_update,
                )
            except VersionUnavailable as exc:
                self.fail(record, str(exc))
                raise
            if isinstance(reply, Error):
                return self.fail(record, reply.error)
            files: list[str] = []
            try:
                result = self._finish_output(deployment, record, reply.result, files)
            except DataError as exc:
                return self.fail(record, str(exc))
            return self._finish(record, COMPLETED, result=result, files=files)
        finally:
            if has_files:
                await asyncio.to_thread(self.storage.remove_work_dir, record.id)

    def start_batch(self, deployment: Deployment, version: Version, items: list[Any], timeout: int) -> list[RequestRecord]:
        """Queue each item as its own batch request; the records, all `pending`.

        Every item is checked first, so one bad item rejects the whole batch (NotAllowed), as on UbiOps.
        """
        if not 1 <= len(items) <= MAX_BATCH_ITEMS:
            raise NotAllowed(f"A batch holds 1 to {MAX_BATCH_ITEMS} requests; got {len(items)}")
        for position, item in enumerate(items):
            try:
                self._check_files_exist(deployment.input_spec, check_input(deployment.input_spec, item))
            except (DataError, StorageError) as exc:
                raise NotAllowed(f"Item {position}: {exc}") from None
        records = [self.new_record(deployment, version, new_id(), item, timeout, BATCH) for item in items]
        self.store.flush()  # on disk before their ids are answered
        for record in records:
            task = asyncio.create_task(self._run_batch_item(deployment, version, record))
            self._batch_tasks[record.id] = task
            task.add_done_callback(functools.partial(self._forget_batch_item, record.id))
        return records

    def _forget_batch_item(self, request_id: str, _: asyncio.Task[Outcome]) -> None:
        self._batch_tasks.pop(request_id, None)

    async def _run_batch_item(self, deployment: Deployment, version: Version, record: RequestRecord) -> Outcome:
        try:
            return await self.run(deployment, version, record)
        except VersionUnavailable:
            return Outcome(record)

    def find(self, project: str, deployment: str, version: str | None, request_id: str) -> RequestRecord:
        """A recorded request of the deployment (and of the version, when one is named)."""
        record = self.store.get(request_id)
        if record is None or (record.project, record.deployment) != (project, deployment) or version not in (None, record.version):
            raise NotFound("Request not found")
        return record

    def collect(self, project: str, deployment: str, version: str | None, request_ids: list[str]) -> list[RequestRecord]:
        """Several recorded requests at once, as many as a batch holds."""
        if len(request_ids) > MAX_BATCH_ITEMS:
            raise NotAllowed(f"At most {MAX_BATCH_ITEMS} request ids can be collected at once; got {len(request_ids)}")
        return [self.find(project, deployment, version, request_id) for request_id in request_ids]

    def history(self, project: str, deployment: str, version: str | None, statuses: tuple[str, ...], limit: int,
                offset: int, start: datetime | None, end: datetime | None, search_id: str | None) -> list[RequestRecord]:
        """Recorded requests of a deployment (or one version) in the statuses asked, newest first."""
        unknown = [s for s in statuses if s not in STATUSES]
        if unknown:
            raise NotAllowed(f"Unknown status {', '.join(unknown)}; use {', '.join(STATUSES)}")
        if PENDING in statuses and PROCESSING in statuses:
            raise NotAllowed("pending and processing cannot be combined in one status filter")
        return self.store.list(project, deployment, version, statuses, limit, offset, start, end, search_id)

    def kept_input(self, record: RequestRecord) -> Any:
        return self._kept(record, record.request_data, "input")

    def kept_output(self, record: RequestRecord) -> Any:
        if record.status != COMPLETED:
            raise NotFound(f"Request {record.id} has no output: it is {record.status}")
        return self._kept(record, record.result, "output")

    def _kept(self, record: RequestRecord, value: Any, what: str) -> Any:
        if not record.keeps_data:
            raise NotFound(f"The {what} of request {record.id} was not kept (request_retention_mode is not full)")
        return value

    def set_status(self, record: RequestRecord, status: object) -> None:
        """The one change a caller may make to a request: cancel a batch request still waiting for an instance."""
        if status != CANCELLED:
            raise NotAllowed("Only {\"status\": \"cancelled\"} can be set on a request")
        task = self._batch_tasks.get(record.id)
        if record.status != PENDING or task is None:
            raise NotAllowed(f"Request {record.id} is {record.status}; only pending batch requests can be cancelled")
        task.cancel()
        record.status, record.time_completed = CANCELLED, now()
        self._save(record)
        self._ended(record)

    def delete(self, record: RequestRecord) -> None:
        if record.status in UNFINISHED:
            raise NotAllowed(f"Request {record.id} is {record.status}; cancel it or wait before deleting it")
        self.store.delete(record.id)

    def fail(self, record: RequestRecord, error: str) -> Outcome:
        """End a request that could not be run, such as one whose form data did not fit its fields."""
        return self._finish(record, FAILED, error=error)

    def _started(self, record: RequestRecord, instance: int) -> None:
        record.status, record.time_started = PROCESSING, now()
        self._instances[record.id] = instance
        self._save(record)

    def _finish(self, record: RequestRecord, status: str, result: Any = None, error: str | None = None,
                files: list[str] | None = None) -> Outcome:
        record.status, record.result, record.error_message = status, result, error
        record.time_completed = now()
        record.time_started = record.time_started or record.time_completed
        record.output_size = _size(result) if status == COMPLETED else None
        self._save(record)
        self._ended(record)
        return Outcome(record, tuple(files or ()))

    def _ended(self, record: RequestRecord) -> None:
        """Count and log a request that has reached its final status, once it is on disk."""
        self.store.flush()
        assert record.time_completed is not None, "set as it ends"
        seconds = (record.time_completed - record.time_created).total_seconds()
        self.metrics.request_ended(record.deployment, record.version, record.status, seconds)
        log.info("%s/%s request %s %s in %.3f s", record.deployment, record.version, record.id, record.status, seconds,
                 extra={"deployment": record.deployment, "version": record.version,
                        "instance": self._instances.pop(record.id, None), "request_id": record.id,
                        "status": record.status, "duration_seconds": seconds})

    def _save(self, record: RequestRecord) -> None:
        if record.stored:
            self.store.update(record)

    def _prepare_input(self, spec: Spec, request_id: str, data: Any) -> Any:
        if spec.kind == "structured" and isinstance(data, list):
            return [_numbered(n, self._prepare_item, spec, request_id, item) for n, item in enumerate(data)]
        return self._prepare_item(spec, request_id, data)

    def _prepare_item(self, spec: Spec, request_id: str, item: Any) -> Any:
        return map_files(spec, check_input(spec, item),
                         lambda field, position, value: self._input_file(request_id, field.name, position, value))

    def _check_files_exist(self, spec: Spec, item: Any) -> None:
        map_files(spec, item, lambda field, _, value: self._stored_file(field.name, value))

    def _stored_file(self, field: str, value: str) -> Path:
        if not is_file_uri(value):
            raise DataError(
                f"Input field {field!r} must be a {FILE_URI_SCHEME} URI (upload the file first) "
                f"or a file part of a multipart request; got {value!r}"
            )
        try:
            return self.storage.resolve_uri(value)
        except StorageError as exc:
            raise DataError(f"Input field {field!r}: {exc}") from None

    def _input_file(self, request_id: str, field: str, position: int, value: str) -> str:
        """A private local copy of a stored file, as UbiOps hands the deployment a local path."""
        source = self._stored_file(field, value)
        target = self.storage.request_work_dir(request_id) / f"{field}.{position}" / source.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        return str(target)

    def _finish_output(self, deployment: Deployment, record: RequestRecord, result: Any, files: list[str]) -> Any:
        spec = deployment.output_spec
        if deployment.input_spec.kind == "structured" and isinstance(record.request_data, list):
            if not isinstance(result, list):
                raise DataError(f"The input was a list, so the output must be a list too; got {json_type(result)}")
            return [_numbered(n, self._finish_item, spec, record.id, item, files) for n, item in enumerate(result)]
        return self._finish_item(spec, record.id, result, files)

    def _finish_item(self, spec: Spec, request_id: str, item: Any, files: list[str]) -> Any:
        return map_files(spec, check_output(spec, item), lambda field, _, value: self._output_uri(
            field.name, value, self.storage.request_output_dir(request_id), files))

    def _output_uri(self, field: str, value: str, output_dir: Path, files: list[str]) -> str:
        path = Path(value)
        if not (path.is_absolute() and path.parent == output_dir and path.is_file()):
            raise DataError(f"Output field {field!r} must be the path of an existing file; no file at {value!r}")
        files.append(self.storage.uri(path))
        return files[-1]


def _size(data: Any) -> int:
    return len(data.encode()) if isinstance(data, str) else len(json.dumps(data).encode())


def _numbered(position: int, function: Callable[..., Any], *args: Any) -> Any:
    """Run `function`, naming the list item in the message of a DataError."""
    try:
        return function(*args)
    except DataError as exc:
        raise DataError(f"Item {position}: {exc}") from None
