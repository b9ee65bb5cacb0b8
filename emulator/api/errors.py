"""Every failure answers in UbiOps' shape, `{"error": "<message>"}`, which the SDK's
`ApiException` reads; a bug in the emulator is a logged 500, never a dropped connection (`InternalErrors`).

On the streaming routes the message is in `error_message` too: `ubiops.utils.stream_deployment_request`
(and so the CLI's `ubiops deployments requests create`) never looks at the status code and reads a
JSON line only for `error_message`; given `{"error": …}` alone it fails with "Invalid value for `id`,
must not be `None`" instead of the reason."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from emulator.api.unserved import not_served_message, unserved_operation
from emulator.exceptions import AlreadyExists, NotAllowed, NotFound, NotSaved, QueueFull
from emulator.runtime.pool import VersionUnavailable
from emulator.storage import NameClash, NotStored, StorageError

log = logging.getLogger("emulator.api")


class ApiError(Exception):
    """A call the API layer cannot even read (a body, a query, a path that does not parse), with its status."""

    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message


STREAM_PATH_SUFFIX = "/requests/stream"
DOMAIN_ERRORS: dict[type[Exception], int] = {
    NotFound: 404,
    AlreadyExists: 409,
    NotAllowed: 400,
    NotStored: 404,
    NameClash: 409,
    StorageError: 400,
    VersionUnavailable: 503,
    QueueFull: 503,
    NotSaved: 507,
}
"""Each error the backend raises and its one HTTP status (the most specific class wins)."""


def error_response(status_code: int, message: str, path: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """The error answer for a call to `path` (the streaming routes also get `error_message`)."""
    body = {"error": message}
    if path.rstrip("/").endswith(STREAM_PATH_SUFFIX):
        body["error_message"] = message
    return JSONResponse(body, status_code=status_code, headers=headers)


def install_error_handlers(app: FastAPI, api_prefixes: tuple[str, ...]) -> None:
    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status_code, exc.message, request.url.path)

    async def domain_error(request: Request, exc: Exception) -> JSONResponse:
        status = next(DOMAIN_ERRORS[kind] for kind in type(exc).__mro__ if kind in DOMAIN_ERRORS)
        message = str(exc)
        if isinstance(exc, StorageError):  # worded to fit in others too: "Input field 'img': file … does not exist"
            message = message[:1].upper() + message[1:]
        if isinstance(exc, NotSaved):  # the emulator's own trouble: its user reads the log too
            log.warning("%s %r: %s", request.method, request.url.path, message)
        return error_response(status, message, request.url.path)

    for kind in DOMAIN_ERRORS:
        app.add_exception_handler(kind, domain_error)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        """Starlette's answer to a call no route takes (404, or 405 for a path served with other methods);
        when the call is an operation of the SDK that no route serves, 501 naming it: UbiOps serves it, the
        emulator does not."""
        if exc.status_code in (404, 405):
            raw_path = request.scope.get("raw_path", request.url.path.encode()).decode("latin-1").split("?")[0]
            if operation := unserved_operation(request.method, raw_path, api_prefixes, request.app.routes):
                return error_response(501, not_served_message(operation), request.url.path)
        return error_response(exc.status_code, str(exc.detail), request.url.path, getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def invalid_parameters(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [f"{' '.join(str(part) for part in e['loc'])}: {e['msg']}" for e in exc.errors()]
        return error_response(400, "; ".join(problems), request.url.path)

    @app.exception_handler(ClientDisconnect)
    async def client_gone(request: Request, exc: ClientDisconnect) -> JSONResponse:
        """A caller that closed the connection before its body was sent (a ^C on curl) is no bug of the
        emulator's: an info line, and the answer nobody reads is nginx's 499."""
        log.info("the client went away before sending all of its %s %r", request.method, request.url.path)
        return error_response(499, "The client closed the connection before its request body was sent",
                              request.url.path)


INTERNAL_ERROR = "Internal error in the emulator; see its log"


class InternalErrors:
    """ASGI middleware, the outermost of the emulator's own: a bug in a call is its traceback in the log
    and a 500 in UbiOps' shape, on a connection that stays open. Starlette's own catch-all answers and
    then raises the error again, for uvicorn, which logged the traceback a second time and closed the
    connection: a client's next call on it found it closed. An error after the answer has begun still
    goes to uvicorn: only closing the connection tells the client that the answer is cut short."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def sending(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except Exception:
            if started:
                raise
            log.exception("internal error on %s %r", scope["method"], scope["path"])  # %r: any caller's escapes
            await error_response(500, INTERNAL_ERROR, scope["path"])(scope, receive, send)
