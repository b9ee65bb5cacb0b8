"""The optional API token: with one set, every call needs `Authorization: Token <token>`.

Signed file URLs carry their own proof, as UbiOps' do, and need no token; nor do the web page and its
static files, which hold no data (the page sends the token its user types). The comparison is
constant-time, and the token itself is never logged or echoed.
"""

from __future__ import annotations

import hmac

from starlette.types import ASGIApp, Receive, Scope, Send

from emulator.api.errors import error_response

SCHEMES = ("token", "bearer")


class TokenAuth:
    """ASGI middleware, so that every route, `/docs` included, is covered without opting in."""

    def __init__(self, app: ASGIApp, token: str | None, open_prefixes: tuple[str, ...],
                 open_paths: tuple[str, ...] = ()) -> None:
        self.app = app
        self._token = token.encode() if token else None
        self._open_prefixes = open_prefixes
        self._open_paths = open_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (self._token is None or scope["type"] != "http" or scope["path"].startswith(self._open_prefixes)
                or scope["path"] in self._open_paths):
            await self.app(scope, receive, send)
            return
        header = dict(scope["headers"]).get(b"authorization")
        if header is None:
            response = error_response(401, "Authentication credentials were not provided.", scope["path"])
        elif not self._accepts(header):
            response = error_response(401, "Invalid token.", scope["path"])
        else:
            await self.app(scope, receive, send)
            return
        await response(scope, receive, send)

    def _accepts(self, header: bytes) -> bool:
        assert self._token is not None, "only asked when a token is set"
        scheme, _, credential = header.partition(b" ")
        if scheme.decode("latin-1").lower() not in SCHEMES:
            return False
        return hmac.compare_digest(credential.strip(), self._token)
