"""The optional API token: with one set, every call needs `Authorization: Token <token>`.

Signed file URLs carry their own proof, as UbiOps' do, and need no token; nor do the web page and its
static files, which hold no data (the page sends the token its user types), nor the health probes
(which say more only to a caller with the token: `token_accepted`). The comparison is
constant-time, and the token itself is never logged or echoed.
"""

from __future__ import annotations

import hmac
import re

from starlette.types import ASGIApp, Receive, Scope, Send

from emulator.api.errors import error_response

SCHEMES = ("token", "bearer")
TOKEN_RULE = re.compile(r"[!-~]+")
"""A token is printable ASCII without spaces: what an `Authorization` header carries as typed, the SDK
sends (it encodes headers as latin-1) and the web page takes (its TOKEN_CHARACTERS, the same class)."""


def token_problem(token: str) -> str | None:
    """Why `token` cannot be the API token, said of it, or None: any other would turn auth off or
    refuse callers that send it as given."""
    if not token:
        return "is empty: give the token every call must carry, or leave it out for none"
    if not TOKEN_RULE.fullmatch(token):
        return ("holds a space, a control character or a non-ASCII one, which the SDK or the web page cannot "
                "send: a token is printable ASCII without spaces")
    return None


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
        elif not token_accepted(header, self._token):
            response = error_response(401, "Invalid token.", scope["path"])
        else:
            await self.app(scope, receive, send)
            return
        await response(scope, receive, send)


def token_accepted(header: bytes, token: bytes) -> bool:
    """Whether an `Authorization` header carries `token` (`Token …` or `Bearer …`)."""
    scheme, _, credential = header.partition(b" ")
    if scheme.decode("latin-1").lower() not in SCHEMES:
        return False
    return hmac.compare_digest(credential.strip(), token)
