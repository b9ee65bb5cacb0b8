"""Deployment requests, between the HTTP layer and the instances: the backend the request routes call.

A request call is admitted first (`admit`: its version found, able to run it, with room in its
queue), before any of its body is read; once the body has arrived, the request is accepted (`accept`,
`start_batch`) unless its version was deleted meanwhile.

A request goes from accepted input to final status: its input is checked against the spec, it is
queued for the version's instances (a batch's items in their order), file inputs reach the deployment as
private local copies (`work_folders`) made once an instance takes it, it runs there, then its output is
checked and output files are kept in the bucket. Every request is recorded as the
version's retention mode asks (batch requests always, so they can be collected); the rules of that
history (which statuses can be listed, what was kept, what can be cancelled or deleted) are here too.
A problem with the data is a `failed` request with a clear message, as on UbiOps. Each request that
ends is counted (`emulator.metrics`) and logged, in one line.

From acceptance to its end a request is *live*: it can be cancelled, waiting (then it is dropped) or
running (then its instance is stopped and replaced), and until an instance takes it, it counts
against its version's `maximum_queue_size` (unless a free instance is there to take it). A batch
request no instance has taken when the emulator stops stays `pending`, and is queued again at the
next start (`stopping`, `resume`).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

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
from emulator.exceptions import NotAllowed, NotFound, QueueFull
from emulator.metrics import Metrics
from emulator.request_store import BATCH, DIRECT, RequestRecord, RequestStore
from emulator.runtime.instance import Instance, OnUpdate
from emulator.runtime.manager import Runtime
from emulator.runtime.pool import VersionUnavailable
from emulator.runtime.protocol import Error, Job, RequestContext
from emulator.state import EMULATOR_USER_ID, Deployment, Version, new_id, now
from emulator.storage import Storage, StorageError, file_work
from emulator.turns import in_turns
from emulator.work_folders import PrivateCopies

if TYPE_CHECKING:
    from emulator.registry import Registry

MAX_BATCH_ITEMS = 250
"""Requests in one batch, and request ids in one call that collects, cancels or deletes several."""
OBJECT_TYPES = ("deployment", "pipeline")
"""What a project's request list may be asked for (`object_type`)."""
NOT_FOUND_NAMED = 10
"""The unknown request ids a 404 names; past them it says how many more."""
log = logging.getLogger("emulator.requests")
BodyReader = Callable[[Spec, Storage, str], Awaitable[Any]]
"""Reads a request call's body into its data (`emulator.api.request_body.read_request_data`, bound to the
call), given the deployment's input fields, the storage its file parts go to, and the request's id; raises
DataError when a value does not fit its field."""


class Target(NamedTuple):
    """The deployment and version a request call is for (`RequestRunner.admit`), and the names its path
    found them by: once its body has arrived, the version is looked for again by those names. (A named
    tuple: made for every request, in a third of a frozen dataclass' time.)"""

    project: str
    deployment_name: str
    deployment: Deployment
    version: Version


@dataclass(frozen=True)
class Outcome:
    record: RequestRecord
    files: tuple[str, ...] = ()
    """The URIs of the output files."""


@dataclass
class _Live:
    """A request between its acceptance and its end."""

    record: RequestRecord
    version_id: str
    work: asyncio.Task[Outcome] | None = None
    """Its run, once started; cancelling it stops the request."""
    waiting: bool = True
    """No instance has taken it yet: it counts against its version's queue."""


class RequestRunner:
    def __init__(self, storage: Storage, store: RequestStore, runtime: Runtime, metrics: Metrics,
                 registry: Registry | None = None) -> None:
        self.storage = storage
        self.store = store
        self.runtime = runtime
        self.metrics = metrics
        self.registry = registry
        """Where the calls' deployments and versions are found (`admit`, `accept`, `start_batch`)."""
        self._batch_tasks: dict[str, asyncio.Task[Outcome]] = {}
        self._instances: dict[str, Instance] = {}
        """The instance each running request runs on, for the line logged when it ends."""
        self._live: dict[str, _Live] = {}
        self._waiting: Counter[str] = Counter()
        """By version id: live requests no instance has taken yet."""
        self._stopping = False
        """The emulator stops: a batch request no instance has taken stays `pending`, queued again at the next start."""

    def admit(self, project: str, deployment: str, version: str | None) -> Target:
        """The deployment and version a request call names (its default version when `version` is None),
        if it may take the call: NotFound for unknown names, and VersionUnavailable or QueueFull (503)
        before any input is read or stored, when the version cannot run it or its queue is full."""
        assert self.registry is not None, "the emulator's runner is given its registry"
        found = self.registry.version(project, deployment, version)
        self.runtime.pool(found).check_available()
        self.check_queue(found)
        return Target(project, deployment, self.registry.deployment(project, deployment), found)

    async def accept(self, target: Target, read_body: BodyReader, timeout: int) -> RequestRecord:
        """A direct (or streaming) request, recorded from the call's body: already failed if its data does
        not fit its fields (DataError), NotFound if its version was deleted while the body arrived. A body
        that fails any way keeps none of the files it sent before: no record refers to them (a failed one
        holds no data)."""
        request_id = new_id()
        error: DataError | None = None
        try:
            try:
                data = await read_body(target.deployment.input_spec, self.storage, request_id)
            except DataError as exc:
                data, error = None, exc
            self._check_held(target)
        except BaseException:
            self.storage.remove_request_files(request_id)
            raise
        if error is not None:
            self.storage.remove_request_files(request_id)
        record = self.new_record(target.deployment, target.version, request_id, data, timeout, DIRECT)
        return record if error is None else self.fail(record, str(error)).record

    def _check_held(self, target: Target) -> None:
        """NotFound when the call's version was deleted (alone or with its deployment) since `admit` found
        it: recording the request would leave it in the history of a new version of that name."""
        assert self.registry is not None, "the emulator's runner is given its registry"
        self.registry.check_held(target.project, target.deployment_name, target.version)

    def check_queue(self, version: Version, count: int = 1) -> None:
        """QueueFull if `count` more requests would leave more than the version's `maximum_queue_size`
        waiting for an instance (UbiOps: the requests in its queue, not those running). Those its free
        instances take at once never wait, so 0 allows as many as there are free instances."""
        limit = version.settings.get("maximum_queue_size")
        if limit is None:
            return
        free = self.runtime.pool(version).free
        waiting = max(0, self._waiting[version.id] - free)
        would_wait = max(0, self._waiting[version.id] + count - free)
        if would_wait > limit:
            batch = f", {would_wait - waiting} of these {count} would," if count > 1 else ""
            raise QueueFull(f"The queue of version {version.name} is full: {waiting} requests wait for an instance"
                            f"{batch} and its maximum_queue_size is {limit}; try again later")

    def new_record(self, deployment: Deployment, version: Version, request_id: str, data: Any, timeout: int, mode: str
                   ) -> RequestRecord:
        """A `pending` request, stored unless the version's retention mode is `none` (batch: always), to
        expire after the version's retention time as it is now."""
        retention, created = KEEP_ALL if mode == BATCH else version.request_retention_mode, now()
        record = RequestRecord(
            id=request_id, project=deployment.project, deployment=deployment.name, version=version.name, mode=mode,
            status=PENDING, timeout=timeout, time_created=created, keeps_data=retention == KEEP_ALL,
            stored=retention != KEEP_NOTHING, request_data=data,
            expires=created + timedelta(seconds=version.request_retention_time),
        )
        record.input_size = record.size_of("request_data")
        if record.stored:
            self.store.add(record)
        self._hold(record, version)
        return record

    def _hold(self, record: RequestRecord, version: Version) -> None:
        """A request accepted, or queued again at a start (`resume`): live, waiting in its version's queue."""
        self._live[record.id] = _Live(record, version.id)
        self._waiting[version.id] += 1

    async def run(
        self,
        deployment: Deployment,
        version: Version,
        record: RequestRecord,
        on_update: OnUpdate | None = None,
    ) -> Outcome:
        """Run a recorded request to its end; raises VersionUnavailable (the record failed with the
        reason) when the version cannot start. A request that already ended (its body did not fit its
        fields, or it was cancelled before it ran) is answered as it is, and so is one cancelled
        while it runs.
        """
        live = self._live.get(record.id)
        if record.status != PENDING or live is None:
            return Outcome(record)
        live.work = asyncio.ensure_future(self._run(deployment, version, record, on_update))
        try:
            return await live.work
        except asyncio.CancelledError:
            caller = asyncio.current_task()
            if record.status == CANCELLED and not (caller and caller.cancelling()):
                return Outcome(record)
            raise

    async def _run(self, deployment: Deployment, version: Version, record: RequestRecord,
                   on_update: OnUpdate | None) -> Outcome:
        # No await before the job is queued: a batch's items reach the queue in the order they were made.
        copies = self.storage.work.plan(record.id)
        try:
            try:
                data = self._prepare_input(deployment.input_spec, record.request_data, copies)
            except (DataError, StorageError) as exc:
                return self.fail(record, str(exc))
            # Its output is checked against the fields of the code that ran it, as they were when an
            # instance took it: `--reload` changes them while a request still runs on the old instances.
            output_spec = deployment.output_spec

            def started(instance: Instance) -> None:
                nonlocal output_spec
                output_spec = deployment.output_spec
                self._started(record, instance)

            try:
                reply = await self.runtime.pool(version).submit(
                    Job(
                        data=data,
                        context=RequestContext(id=record.id, request_mode="express" if record.mode == DIRECT else "batch",
                                               user_id=EMULATOR_USER_ID),
                        output_dir=str(self.storage.request_output_dir(record.id)),
                    ),
                    record.timeout,
                    on_start=started,
                    on_update=on_update,
                    timed_in_queue=record.mode == DIRECT,
                    prepared=functools.partial(self._input_copied, copies) if copies.copies else None,
                )
            except VersionUnavailable as exc:
                self.fail(record, str(exc))
                raise
            if isinstance(reply, Error):
                if self._stopping and record.mode == BATCH and record.status == PENDING:
                    return self._left_queued(record)
                return self.fail(record, reply.error)
            files: list[str] = []
            try:
                result = self._finish_output(deployment.input_spec.kind, output_spec, record, reply.result, files)
            except DataError as exc:
                return self.fail(record, str(exc))
            return self._finish(record, COMPLETED, result=result, files=files)
        finally:
            if record.status != COMPLETED:  # the files copied for a result that failed its checks, or was cut short
                self.storage.remove_request_output(record.id)

    @contextlib.asynccontextmanager
    async def _input_copied(self, copies: PrivateCopies) -> AsyncIterator[Error | None]:
        """The request's private copies of its input files, made by the instance that takes it and removed
        before that instance takes another: made while they waited, a batch of 250 requests for a 1 GB file
        held 250 GB at once. Gives an `Error` that fails the request when they cannot be made."""
        try:
            failed = None
            try:
                await file_work(copies.size, self.storage.work.copy, copies)
            except OSError as exc:  # the disk is full, a file was deleted while the request waited, or the data folder changed
                gone = [source for source, _ in copies.copies if not source.is_file()]
                reason = f"file {self.storage.uri(gone[0])} no longer exists" if gone else str(exc)
                failed = Error(f"The input files could not be copied for the deployment: {reason}")
            yield failed
        finally:
            await file_work(copies.size, self.storage.work.remove, copies)

    def start_batch(self, target: Target, body: Any, timeout: int) -> list[RequestRecord]:
        """Queue each item of a batch call's body (a list of request inputs, or a single one, as UbiOps
        also takes) as its own batch request; the records, all `pending`. NotFound if its version was
        deleted while the body arrived.

        Every item is checked first, so one bad item rejects the whole batch (NotAllowed), as on UbiOps.
        """
        self._check_held(target)
        deployment, version = target.deployment, target.version
        items = body if isinstance(body, list) else [body]
        if not 1 <= len(items) <= MAX_BATCH_ITEMS:
            raise NotAllowed(f"A batch holds 1 to {MAX_BATCH_ITEMS} requests; got {len(items)}")
        self.check_queue(version, len(items))
        for position, item in enumerate(items):
            try:
                self._check_files_exist(deployment.input_spec, check_input(deployment.input_spec, item))
            except (DataError, StorageError) as exc:
                raise NotAllowed(f"Item {position}: {exc}") from None
        records = [self.new_record(deployment, version, new_id(), item, timeout, BATCH) for item in items]
        self.store.flush()  # on disk before their ids are answered
        for record in records:
            self._queue_batch_item(deployment, version, record)
        return records

    def _queue_batch_item(self, deployment: Deployment, version: Version, record: RequestRecord) -> None:
        task = asyncio.create_task(self._run_batch_item(deployment, version, record))
        self._batch_tasks[record.id] = task
        task.add_done_callback(functools.partial(self._forget_batch_item, record.id))

    def resume(self) -> int:
        """At a start, queue again the batch requests no instance had taken when the emulator last stopped
        (left `pending`: `stopping`, or a kill), in the order they were made, each on its version (by its
        names) as any queued batch request, its timeout counted from when an instance takes it; how many.
        One whose version no longer exists (the `--package` version of an earlier start, served now under
        other names) fails saying so. Run once the versions are restored and their instances started."""
        assert self.registry is not None, "the emulator's runner is given its registry"
        queued = 0
        for record in self.store.unstarted_batch():
            try:
                deployment = self.registry.deployment(record.project, record.deployment)
                version = self.registry.version(record.project, record.deployment, record.version)
            except NotFound:
                self.fail(record, f"The emulator stopped before this request ran, and its version {record.version} of "
                                  f"deployment {record.deployment} no longer existed when it started again")
                continue
            self._hold(record, version)
            self._queue_batch_item(deployment, version, record)
            queued += 1
        return queued

    def stopping(self) -> None:
        """The emulator stops (before its instances do): the batch requests no instance has taken then stay
        `pending`, as stored, for the next start to queue again (`resume`), rather than fail."""
        self._stopping = True

    def _left_queued(self, record: RequestRecord) -> Outcome:
        """A batch request whose instances stopped with the emulator before one took it: no longer live
        here, and `pending` in the history (`stopping`)."""
        self._taken(record.id)
        self._live.pop(record.id, None)
        return Outcome(record)

    def _forget_batch_item(self, request_id: str, _: asyncio.Task[Outcome]) -> None:
        self._batch_tasks.pop(request_id, None)

    async def _run_batch_item(self, deployment: Deployment, version: Version, record: RequestRecord) -> Outcome:
        try:
            return await self.run(deployment, version, record)
        except VersionUnavailable:
            return Outcome(record)

    def find(self, project: str, deployment: str, version: str | None, request_id: str) -> RequestRecord:
        """A recorded request of the deployment (and of the version, when one is named), without its
        input and output (`RequestStore.get(data=False)`): what its metadata, a cancel or a delete need."""
        return self._owned(project, deployment, version, request_id, self.store.get(request_id, data=False))

    async def find_whole(self, project: str, deployment: str, version: str | None, request_id: str) -> RequestRecord:
        """`find`'s request with its input and output, read in a worker thread (`RequestStore.read`)."""
        found = await self.store.read([request_id])
        return self._owned(project, deployment, version, request_id, found.get(request_id))

    def collect(self, project: str, deployment: str, version: str | None, request_ids: list[str],
                verb: str = "collected") -> list[RequestRecord]:
        """Several recorded requests at once, as many as a batch holds, without their input and output
        (as `find`), in the order named (NotFound naming the unknown ones: which of 250 ids was wrong is
        otherwise a guess)."""
        self._check_count(request_ids, verb)
        found = {request_id: self.store.get(request_id, data=False) for request_id in dict.fromkeys(request_ids)}
        return self._all_owned(project, deployment, version, request_ids, found)

    async def collect_whole(self, project: str, deployment: str, version: str | None,
                            request_ids: list[str]) -> list[RequestRecord]:
        """`collect`'s requests with their input and output, read in a worker thread (`RequestStore.read`)."""
        self._check_count(request_ids, "collected")
        return self._all_owned(project, deployment, version, request_ids, await self.store.read(request_ids))

    @staticmethod
    def _check_count(request_ids: list[str], verb: str) -> None:
        if len(request_ids) > MAX_BATCH_ITEMS:
            raise NotAllowed(f"At most {MAX_BATCH_ITEMS} request ids can be {verb} at once; got {len(request_ids)}")

    def _all_owned(self, project: str, deployment: str, version: str | None, request_ids: list[str],
                   found: Mapping[str, RequestRecord | None]) -> list[RequestRecord]:
        records, unknown = [], []
        for request_id in request_ids:
            try:
                records.append(self._owned(project, deployment, version, request_id, found.get(request_id)))
            except NotFound:
                unknown.append(request_id)
        if unknown:
            raise NotFound(_not_found(list(dict.fromkeys(unknown))))
        return records

    @staticmethod
    def _owned(project: str, deployment: str, version: str | None, request_id: str,
               record: RequestRecord | None) -> RequestRecord:
        """`record` (the one stored as `request_id`), if it is the deployment's (and version's, when one is named)."""
        if record is None or not _belongs(record, project, deployment, version):
            raise NotFound("Request not found")
        return record

    def history(self, project: str, deployment: str | None, version: str | None, statuses: tuple[str, ...], limit: int,
                offset: int, start: datetime | None, end: datetime | None, search_id: str | None) -> list[RequestRecord]:
        """Recorded requests of a project, a deployment or one version in the statuses asked, newest first.
        No status (`status=`, `status=,` too) is the default, completed: an empty one listed every status
        mixed, which no filter may ask (pending and processing cannot be combined)."""
        statuses = _checked_filter(statuses, start, end, search_id)
        return self.store.list(project, deployment, version, statuses, limit, offset, start, end, search_id)

    def project_history(self, project: str, object_type: str | None, statuses: tuple[str, ...], limit: int, offset: int,
                        start: datetime | None, end: datetime | None, search_id: str | None) -> list[RequestRecord]:
        """A project's recorded requests of `object_type` (deployments', the default), filtered as `history`'s.
        Pipelines' are none, as no pipeline is served: their filter is checked all the same."""
        if object_type not in (None, *OBJECT_TYPES):
            raise NotAllowed(f"object_type must be one of {', '.join(OBJECT_TYPES)}; got {object_type!r}")
        statuses = _checked_filter(statuses, start, end, search_id)
        if object_type == "pipeline":
            return []
        return self.store.list(project, None, None, statuses, limit, offset, start, end, search_id)

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

    def set_status(self, record: RequestRecord, status: object) -> RequestRecord:
        """The one change a caller may make to a request: cancel it; the request as it is now."""
        if status != CANCELLED:
            raise NotAllowed("Only {\"status\": \"cancelled\"} can be set on a request")
        return self._cancel(self._cancellable(record))

    async def cancel_many(self, project: str, deployment: str, version: str | None, request_ids: list[str],
                          status: str | None) -> list[RequestRecord]:
        """Cancel the requests named (all or none), or, with no ids, every request of the deployment (or
        version) in `status`, `pending` or `processing`; the requests cancelled.

        They are cancelled MAX_BATCH_ITEMS at a time, the event loop serving other calls in between (so
        the ids named, as many at most, are cancelled in one go): 50 000 pending requests cancelled at
        once held it 3.9-5.1 s, every call (/livez too) waiting; now ~0.1 s at most (BENCHMARKS.md). One
        that ended meanwhile, or, by status, left it (an instance took it), is left as it is, and not
        in the answer."""
        if request_ids and status is not None:
            raise NotAllowed("Give the ids of the requests to cancel, or a status with an empty body, not both")
        if request_ids:
            found = self.collect(project, deployment, version, request_ids, "cancelled")
            chosen = list({record.id: self._cancellable(record) for record in found}.values())  # each once
        elif status in UNFINISHED:
            chosen = [live.record for live in list(self._live.values())
                      if live.record.status == status and _belongs(live.record, project, deployment, version)]
        elif status is not None:
            raise NotAllowed(f"Only pending or processing requests can be cancelled by status; got status={status}")
        else:
            raise NotAllowed("Give the ids of the requests to cancel, or status=pending or status=processing "
                             "with an empty body")
        cancelled: list[RequestRecord] = []
        async for some in in_turns(chosen, MAX_BATCH_ITEMS):
            cancelled += [self._cancel(record) for record in some if record.id in self._live and status in (None, record.status)]
        return cancelled

    def _cancellable(self, record: RequestRecord) -> RequestRecord:
        """The live request behind a recorded one; NotAllowed once it has ended."""
        live = self._live.get(record.id)
        if live is None or live.record.status not in UNFINISHED:
            raise NotAllowed(f"Request {record.id} is {record.status}; only pending and processing requests can be cancelled")
        return live.record

    def _cancel(self, record: RequestRecord) -> RequestRecord:
        """End a live request as `cancelled`: withdrawn from its queue, or its instance stopped."""
        live = self._live[record.id]
        if live.work is not None:
            live.work.cancel()
        record.status, record.time_completed = CANCELLED, now()
        self._ended(record)
        return record

    async def delete(self, records: Iterable[RequestRecord]) -> list[RequestRecord]:
        """Delete ended requests with their files, all or none: NotAllowed if any is unfinished; the
        requests deleted, each once (an id named twice is one request)."""
        records = list({record.id: record for record in records}.values())
        for record in records:
            if record.status in UNFINISHED:
                raise NotAllowed(f"Request {record.id} is {record.status}; cancel it or wait before deleting it")
        ids = [record.id for record in records]
        await asyncio.to_thread(self.remove_files, ids)
        self.store.delete(ids)
        return records

    async def forget(self, project: str, deployment: str, version: str | None = None) -> None:
        """Delete the history of a deleted deployment (or version), with its files: on UbiOps requests
        belong to the version, not to its name, so a new one of that name starts without them. A request
        still ending (its instance was just stopped) is not kept either. Their records go a few at a time
        (`in_turns`): 50 000 deleted at once held the event loop ~3 s."""
        for live in self._live.values():
            if _belongs(live.record, project, deployment, version):
                live.record.stored = False
        ids = self.store.ids_of(project, deployment, version)
        await asyncio.to_thread(self.remove_files, ids)
        async for some in in_turns(ids):
            self.store.delete(some)

    def rename(self, project: str, deployment: str, version: str | None, new_name: str) -> None:
        """A renamed deployment (or, with `version`, version) keeps its history, requests still running included."""
        for live in self._live.values():
            if _belongs(live.record, project, deployment, version):
                if version is None:
                    live.record.deployment = new_name
                else:
                    live.record.version = new_name
        self.store.rename(project, deployment, version, new_name)

    def remove_files(self, request_ids: Iterable[str]) -> None:
        """Delete the input and output files of requests (blocking: run it in a thread)."""
        for request_id in request_ids:
            self.storage.remove_request_files(request_id)

    def fail(self, record: RequestRecord, error: str) -> Outcome:
        """End a request that could not be run, such as one whose form data did not fit its fields."""
        return self._finish(record, FAILED, error=error)

    def _started(self, record: RequestRecord, instance: Instance) -> None:
        if record.status != PENDING:
            return  # cancelled as an instance took it: the withdrawal stops that instance
        record.status, record.time_started = PROCESSING, now()
        self._instances[record.id] = instance
        self._taken(record.id)
        self._save(record)

    def _taken(self, request_id: str) -> None:
        """The request no longer waits in its version's queue."""
        live = self._live.get(request_id)
        if live is not None and live.waiting:
            live.waiting = False
            self._waiting[live.version_id] -= 1

    def _finish(self, record: RequestRecord, status: str, result: Any = None, error: str | None = None,
                files: list[str] | None = None) -> Outcome:
        if record.status not in UNFINISHED:
            # Ended already: cancelled as its instance replied, when Python 3.11's `asyncio.wait_for`
            # hands back the reply instead of the cancellation. It stays as its canceller was told.
            return Outcome(record)
        record.status, record.result, record.error_message = status, result, error
        record.time_completed = now()  # `time_started` stays None for one no instance took, as when cancelled
        record.output_size = record.size_of("result") if status == COMPLETED else None
        self._ended(record)
        return Outcome(record, tuple(files or ()))

    def _ended(self, record: RequestRecord) -> None:
        """A request has reached its final status: it is kept (safe from a crash before it is
        answered), live no more, and the files of a request not recorded are noted so they expire as a
        record would. A journal that cannot be written (a full disk) does not stop its answer
        (`RequestStore.answered`); if its files cannot be noted, the error goes to the caller (an HTTP
        500, the reason in the log), and the request still leaves the queue and the live requests."""
        try:
            if record.stored:
                self.store.answered(record)
            elif self.storage.request_dir(record.id).exists():
                self.store.note_files(record)
        finally:
            self._taken(record.id)
            self._live.pop(record.id, None)
            # Counted and logged once the caller has its answer: ~0.08 ms sooner for a trivial request.
            after_answer(self._announce, record, self._instances.pop(record.id, None))

    def _announce(self, record: RequestRecord, instance: Instance | None) -> None:
        """Count and log an ended request (a failed one as a warning, with its error), with the instance that ran it,
        if one did: `logs_list` shows its `instance_id`."""
        assert record.time_completed is not None, "set as it ends"
        seconds = (record.time_completed - record.time_created).total_seconds()
        self.metrics.request_ended(record.project, record.deployment, record.version, record.status, seconds)
        failed = record.status == FAILED
        log.log(logging.WARNING if failed else logging.INFO, "%s/%s request %s %s in %.3f s%s",
                record.deployment, record.version, record.id, record.status, seconds,
                f": {record.error_message}" if failed else "",
                extra={"project": record.project, "deployment": record.deployment, "version": record.version,
                       "instance": instance.number if instance else None, "instance_id": instance.id if instance else None,
                       "request_id": record.id,
                       "status": record.status, "duration_seconds": seconds})

    def _save(self, record: RequestRecord) -> None:
        if record.stored:
            self.store.update(record)

    def _prepare_input(self, spec: Spec, data: Any, copies: PrivateCopies) -> Any:
        """The checked input as the deployment gets it: each file's URI replaced by the path of its
        private copy (planned in `copies`, made once all are known)."""
        if spec.kind == "structured" and isinstance(data, list):
            return [_numbered(n, self._prepare_item, spec, item, copies) for n, item in enumerate(data)]
        return self._prepare_item(spec, data, copies)

    def _prepare_item(self, spec: Spec, item: Any, copies: PrivateCopies) -> Any:
        return map_files(spec, check_input(spec, item), lambda field, value: str(
            copies.add(self._stored_file(field.name, value))))

    def _check_files_exist(self, spec: Spec, item: Any) -> None:
        map_files(spec, item, lambda field, value: self._stored_file(field.name, value))

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

    def _finish_output(self, input_kind: str, spec: Spec, record: RequestRecord, result: Any, files: list[str]) -> Any:
        if input_kind == "structured" and isinstance(record.request_data, list):
            if not isinstance(result, list):
                raise DataError(f"The input was a list, so the output must be a list too; got {json_type(result)}")
            if len(result) != len(record.request_data):  # only requests() can: request() is called once per item
                raise DataError(f"The input was a list of {len(record.request_data)}; requests() returned "
                                f"{len(result)} result{'' if len(result) == 1 else 's'}, where each input needs its own")
            return [_numbered(n, self._finish_item, spec, record.id, item, files) for n, item in enumerate(result)]
        return self._finish_item(spec, record.id, result, files)

    def _finish_item(self, spec: Spec, request_id: str, item: Any, files: list[str]) -> Any:
        return map_files(spec, check_output(spec, item), lambda field, value: self._output_uri(
            field.name, value, self.storage.request_output_dir(request_id), files))

    def _output_uri(self, field: str, value: str, output_dir: Path, files: list[str]) -> str:
        path = Path(value)
        if not (path.is_absolute() and path.parent == output_dir and path.is_file()):
            raise DataError(f"Output field {field!r} must be the path of an existing file; no file at {value!r}")
        files.append(self.storage.uri(path))
        return files[-1]


def _checked_filter(statuses: tuple[str, ...], start: datetime | None, end: datetime | None,
                    search_id: str | None) -> tuple[str, ...]:
    """The statuses a history filter asks (none: completed), or NotAllowed for a filter no call may ask."""
    statuses = statuses or (COMPLETED,)
    unknown = [s for s in statuses if s not in STATUSES]
    if unknown:
        raise NotAllowed(f"Unknown status {', '.join(unknown)}; use {', '.join(STATUSES)}")
    alone = [s for s in UNFINISHED if s in statuses]
    if alone and len(statuses) > 1:
        raise NotAllowed(f"{alone[0]} cannot be combined with other statuses in one status filter")
    # The SDK of each: "*Only available* for completed/failed/cancelled requests".
    ended_only = [name for name, value in (("start_date", start), ("end_date", end), ("search_id", search_id))
                  if value is not None]
    if alone and ended_only:
        raise NotAllowed(f"{' and '.join(ended_only)} {'is' if len(ended_only) == 1 else 'are'} only available "
                         f"for completed, failed and cancelled requests; got status={alone[0]}")
    return statuses


def _not_found(request_ids: list[str]) -> str:
    """`Request not found: <id>`, or `Requests not found: <id>, <id>` (the first NOT_FOUND_NAMED, then how
    many more)."""
    named = NOT_FOUND_NAMED
    shown = ", ".join(request_ids[:named]) + (f" and {len(request_ids) - named} more" if len(request_ids) > named else "")
    return f"Request not found: {shown}" if len(request_ids) == 1 else f"Requests not found: {shown}"


def _belongs(record: RequestRecord, project: str, deployment: str, version: str | None) -> bool:
    return (record.project, record.deployment) == (project, deployment) and version in (None, record.version)


def after_answer(callback: Callable[..., None], *args: Any) -> None:
    """Run `callback` in the event loop's next round, after the task that ends a request has sent
    its answer (at once when no loop runs)."""
    try:
        asyncio.get_running_loop().call_soon(callback, *args)
    except RuntimeError:
        callback(*args)


def _numbered(position: int, function: Callable[..., Any], *args: Any) -> Any:
    """Run `function`, naming the list item in the message of a DataError."""
    try:
        return function(*args)
    except DataError as exc:
        raise DataError(f"Item {position}: {exc}") from None
