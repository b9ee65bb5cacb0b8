"""What a web page can make a browser send is refused: requests from other origins and for other hosts.

Any page the developer visits can post a multipart form to `http://127.0.0.1:8000` (a "simple
request": no CORS preflight, and the attacker needs no answer), and a page on a rebound DNS name can
even read the answers. Uploading a revision runs its code, so this guard runs before anything else:

- the `Host` header must name the listen address, `localhost`, a loopback address or an
  `--allow-host` name (ports are not compared): a DNS-rebinding page names its own host;
- a request with an `Origin` must come from the emulator's own origin (`<scheme>://<Host>`, the page
  it serves) or an `--allow-origin` one; `Origin: null` (sandboxed and file pages) is foreign. A
  request without one but marked `Sec-Fetch-Site: cross-site` is refused too, unless it is a
  top-level GET navigation (a link to `/docs` followed from another site, which changes nothing);
- GET and HEAD of a signed file URL (`/storage/…`) are exempt from the origin rule: each is bound to
  one method on one file and expires, so a page may show an image by it. A signed PUT is not exempt.

Clients that are not browsers (curl, the SDK, the CLI) send no `Origin` and are unaffected. CORS
headers are sent only to `--allow-origin` origins, by starlette's CORSMiddleware.
"""

from __future__ import annotations

import ipaddress
import logging
import re
from collections.abc import Iterable
from urllib.parse import urlsplit

from fastapi import FastAPI
from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from emulator.api.errors import error_response
from emulator.settings import Settings

log = logging.getLogger("emulator.api")
HOST_HEADER = re.compile(r"(?:\[(?P<ipv6>[0-9a-f:.]+)\]|(?P<name>[a-z0-9._-]+))(?::\d{1,5})?")
DEFAULT_PORTS = {"http": 80, "https": 443}
READ_METHODS = ("GET", "HEAD")


def host_name(value: str) -> str | None:
    """The host a `Host` header (or an `--allow-host` value) names: lowercase, without port, brackets or
    final dot; None when it is malformed."""
    match = HOST_HEADER.fullmatch(value.strip().lower())
    return (match["ipv6"] or match["name"].rstrip(".")) if match else None


def parse_allowed_host(value: str) -> str:
    """An `--allow-host` value, as `host_name` will compare it."""
    name = host_name(value)
    if not name:
        raise ValueError(f"--allow-host: {value!r} is not a host name such as devbox.local or 192.168.1.20")
    return name


def parse_allowed_origin(value: str) -> str:
    """An `--allow-origin` value, written as browsers send `Origin`: `scheme://host[:port]`, the default
    port left out."""
    problem = ValueError(f"--allow-origin: {value!r} is not an origin such as http://localhost:3000 (scheme://host[:port], nothing after)")
    try:
        parts = urlsplit(value.strip())
        port = parts.port
    except ValueError:
        raise problem from None
    if (parts.scheme not in DEFAULT_PORTS or not parts.hostname or parts.username or parts.password
            or parts.path not in ("", "/") or parts.query or parts.fragment):
        raise problem
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{parts.scheme}://{host}" + (f":{port}" if port not in (None, DEFAULT_PORTS[parts.scheme]) else "")


class OriginGuard:
    """ASGI middleware: answers 403 `{"error": ...}` to a foreign `Host` or origin, before any route
    reads the request."""

    def __init__(self, app: ASGIApp, listen_host: str, allowed_hosts: Iterable[str], allowed_origins: Iterable[str],
                 signed_prefix: str) -> None:
        self.app = app
        self._hosts = {"localhost", listen_host.strip("[]").lower(), *allowed_hosts}
        self._origins = set(allowed_origins)
        self._signed_prefix = signed_prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        refusal = self._refusal(scope) if scope["type"] == "http" else None
        if refusal is None:
            await self.app(scope, receive, send)
            return
        # %r: the path is a foreign page's, decoded; as it is, its escapes could forge log lines and drive terminals
        log.warning("refused %s %r: %s", scope["method"], scope["path"], refusal)
        await error_response(403, refusal, scope["path"])(scope, receive, send)

    def _refusal(self, scope: Scope) -> str | None:
        """Why this request is refused, or None. A request without `Host` (HTTP/1.0) comes from no browser."""
        headers = Headers(scope=scope)
        host = headers.get("host")
        if host is not None and not self._allows_host(host_name(host)):
            return (f"Host {host!r} is refused: the emulator answers only to its own address, localhost, loopback "
                    "addresses and --allow-host names (this guards against DNS rebinding)")
        if scope["method"] in READ_METHODS and scope["path"].startswith(self._signed_prefix):
            return None
        origin = headers.get("origin")
        if origin is not None:
            if origin.lower() in self._origins or (host is not None and origin.lower() == f"{scope['scheme']}://{host.lower()}"):
                return None
            return (f"Requests from the web origin {origin!r} are refused: only the emulator's own pages and "
                    "--allow-origin origins may call it from a browser")
        if headers.get("sec-fetch-site") == "cross-site" and not _is_navigation(scope, headers):
            return ("Cross-site requests are refused: a page of another site sent this; "
                    "allow that site with --allow-origin")
        return None

    def _allows_host(self, name: str | None) -> bool:
        if name is None:
            return False
        if name in self._hosts:
            return True
        try:
            return ipaddress.ip_address(name).is_loopback
        except ValueError:
            return False


def _is_navigation(scope: Scope, headers: Headers) -> bool:
    """A link followed to a page of the emulator: a top-level GET, which a page cannot read or frame."""
    return (scope["method"] in READ_METHODS and headers.get("sec-fetch-mode") == "navigate"
            and headers.get("sec-fetch-dest") == "document")


def install_origin_guard(app: FastAPI, settings: Settings, signed_prefix: str) -> None:
    """Add the guard outermost (call it last), with CORS answers (preflights included) inside it for
    allowed origins only, yet outside the token check: browsers send no `Authorization` on a preflight."""
    if settings.allowed_origins:
        app.add_middleware(CORSMiddleware, allow_origins=settings.allowed_origins, allow_methods=["*"],
                           allow_headers=["*"], allow_private_network=True)
    app.add_middleware(OriginGuard, listen_host=settings.host, allowed_hosts=settings.allowed_hosts,
                       allowed_origins=settings.allowed_origins, signed_prefix=signed_prefix)
