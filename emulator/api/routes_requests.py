"""Creating deployment requests: direct (answered when done), batch (answered at once, run in the
background) and streaming (server-sent events with the deployment's partial output).

A failure inside the deployment, or data that does not match the spec, is HTTP 200 with
`status: "failed"`, as on UbiOps; only problems with the call itself are HTTP errors.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import re
from collections.abc import AsyncIterator

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from emulator.api.dependencies import Services, services_of
from emulator.api.parameters import BoundedInt, documented, read_query
from emulator.api.paths import DEPLOYMENT, VERSION, at_both_levels
from emulator.api.request_body import read_json, read_request_data
from emulator.api.routes_storage import download_url
from emulator.api.sdk_models.requests import (
    DeploymentRequestBatchCreateResponse,
    DirectRequestResponse,
    batch_item,
    create_response,
    direct_response,
)
from emulator.request_runner import Outcome, Target
from emulator.request_store import RequestRecord
from emulator.runtime.pool import VersionUnavailable

router = APIRouter()

TIMEOUT = BoundedInt("timeout", 300, 10, 3600, "Seconds before the request fails (UbiOps: 10 to 3600)")
BATCH_TIMEOUT = BoundedInt("timeout", 14400, 10, 172800, "Seconds a batch request may run, from when an instance takes it")
PRIORITY = BoundedInt("priority", None, 0, 1, "Accepted for compatibility; the emulator runs requests in order")
DIRECT_PATHS = (DEPLOYMENT + "/requests", VERSION + "/requests")
"""Where `deployment_requests_create` is served (`at_both_levels`), for `app`'s plain routes to it."""
LINE_ENDS = re.compile(r"\r\n|\r|\n")
"""What ends a line in an event stream (the SSE standard)."""
UPDATES_AHEAD = 4
"""Streamed updates kept for a caller that reads more slowly than its deployment streams them: past these
the deployment's `streaming_update` waits (`Updates.put`, `Instance.run`) until the caller has read on."""
_DATA = {
    "application/json": {"schema": {"description": "Structured input: an object of the deployment's input fields "
                                                   "(plain input: a JSON string)"}, "example": {}},
    "text/plain": {"schema": {"type": "string", "description": "Plain input"}, "example": "hello"},
    "multipart/form-data": {"schema": {"type": "object", "additionalProperties": True,
                                       "description": "As `curl -F` sends it (the emulator's convenience): a file "
                                                      "part per file field, a value per other field"}},
}
REQUEST_BODY = {"requestBody": {"required": True, "content": _DATA}}
"""The body of a request, documented for `/docs` ("Try it out"): the routes read it themselves
(`request_body`), by its content type, so FastAPI cannot infer it."""
BATCH_BODY = {"requestBody": {"required": True, "content": {"application/json": {
    "schema": {"type": "array", "items": {}, "description": "A list of request inputs (or a single one)"},
    "example": [{}]}}}}


# The routes take the request alone and read its path and query themselves (`parameters`): FastAPI
# solving them cost ~0.06 ms per call (BENCHMARKS.md, "Where the emulator's time went").
@at_both_levels(router.post, "/requests", response_model=DirectRequestResponse,
                openapi_extra={**REQUEST_BODY, **documented(TIMEOUT, PRIORITY)})
async def deployment_requests_create(request: Request) -> Response:
    timeout, _priority = read_query(request, TIMEOUT, PRIORITY)
    services, target = _target(request)
    record = await services.runner.accept(target, functools.partial(read_request_data, request), timeout)
    outcome = await services.runner.run(target.deployment, target.version, record)
    urls = {uri: download_url(request, services, uri) for uri in outcome.files}
    body = direct_response(outcome.record, urls or None)
    return Response(body.model_dump_json(exclude=None if urls else {"emulator_file_urls"}), media_type="application/json")


@at_both_levels(router.post, "/requests/batch", response_model=list[DeploymentRequestBatchCreateResponse],
                openapi_extra={**BATCH_BODY, **documented(BATCH_TIMEOUT, PRIORITY)})
async def batch_deployment_requests_create(request: Request) -> list[DeploymentRequestBatchCreateResponse]:
    """A JSON list of requests, or a single one (as UbiOps also takes), each queued as its own request."""
    timeout, _priority = read_query(request, BATCH_TIMEOUT, PRIORITY)
    services, target = _target(request)
    records = services.runner.start_batch(target, await read_json(await request.body()), timeout)
    return [batch_item(record) for record in records]


@at_both_levels(router.post, "/requests/stream", response_class=StreamingResponse,
                openapi_extra={**REQUEST_BODY, **documented(TIMEOUT)})
async def deployment_requests_stream(request: Request) -> StreamingResponse:
    """Server-sent events as `ubiops.utils.stream_deployment_request` reads them: a `data:` line per
    partial output (`context["streaming_update"]`), then the final response as one JSON line."""
    (timeout,) = read_query(request, TIMEOUT)
    services, target = _target(request)
    record = await services.runner.accept(target, functools.partial(read_request_data, request), timeout)
    updates = Updates()
    running = asyncio.create_task(services.runner.run(target.deployment, target.version, record, updates.put))
    return EventStream(_events(running, updates.queue, record), updates)


class Updates:
    """A streaming request's updates on their way to its caller. At most UPDATES_AHEAD wait: `put` waits
    for room, and so does the deployment (a caller that stops reading leaves its request to its timeout,
    which stops the instance), where an unbounded queue kept all that a fast deployment streamed to a
    slow caller. Once the stream has ended (the caller hung up), updates are dropped: the request runs
    on to its end, as a hung-up request does (README)."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[str] = asyncio.Queue(UPDATES_AHEAD)
        self._open = True

    async def put(self, text: str) -> None:
        if self._open:
            await self.queue.put(text)

    def close(self) -> None:
        """Drop what waits, which frees a `put` waiting for room, and what comes."""
        self._open = False
        while not self.queue.empty():
            self.queue.get_nowait()


class EventStream(StreamingResponse):
    """A streaming request's events, its `Updates` closed however the response ends: when the caller
    hangs up, Starlette stops reading the events without closing their generator."""

    def __init__(self, events: AsyncIterator[str], updates: Updates) -> None:
        super().__init__(events, media_type="text/event-stream")
        self.updates = updates

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.updates.close()


async def _events(running: asyncio.Task[Outcome], updates: asyncio.Queue[str], record: RequestRecord) -> AsyncIterator[str]:
    """The stream has started, so even a version that stops being available ends it with a failed
    response line (the runner has recorded the request as failed), never a broken stream."""
    while True:
        update = asyncio.ensure_future(updates.get())
        try:
            await asyncio.wait({update, running}, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:  # the caller hung up
            update.cancel()
            raise
        if not update.done():  # the request ended first
            update.cancel()
            break
        yield _event(update.result())
    while not updates.empty():
        yield _event(updates.get_nowait())
    with contextlib.suppress(VersionUnavailable):
        running.result()
    yield create_response(record).model_dump_json() + "\n"


def _event(text: str) -> str:
    """One server-sent event; a multi-line text takes a `data:` line per line (CR, LF or CRLF ends a
    line in an event stream, so each of them does here)."""
    return "".join(f"data:{line}\n" for line in LINE_ENDS.split(text)) + "\n"


def _target(request: Request) -> tuple[Services, Target]:
    """The services, and what the call is for, by its path (`RequestRunner.admit`: 404 or 503 before
    any input is read)."""
    services = services_of(request)
    path = request.path_params
    return services, services.runner.admit(path["project_name"], path["deployment_name"], path.get("version"))
