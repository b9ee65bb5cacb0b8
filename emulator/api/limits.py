"""A size limit on request bodies (`--max-upload-mb`), enforced before and while they arrive, so no
upload can fill the disk or memory: a declared `Content-Length` over the limit is refused at once,
an undeclared body is counted as it streams in."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from emulator.api.errors import error_response


class BodyTooLarge(HTTPException):
    """An HTTPException, which FastAPI lets through as it reads a route's body: any other error there
    became its 400 "There was an error parsing the body"."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"The request body is larger than the limit of {limit // 1024**2} MB (--max-upload-mb)")


class BodySizeLimit:
    """ASGI middleware: answers 413 `{"error": ...}` for a body larger than `max_bytes`."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await error_response(413, BodyTooLarge(self.max_bytes).detail, scope["path"])(scope, receive, send)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                raise BodyTooLarge(self.max_bytes)
            return message

        await self.app(scope, counted, send)
