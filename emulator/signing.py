"""Signed URLs for file transfers, as UbiOps hands out: no token needed, valid for one path, expiring.

The key is made anew at each start, so a URL never outlives the server that signed it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from urllib.parse import urlencode

DEFAULT_LIFETIME_SECONDS = 3600
MAX_EXPIRES_DIGITS = 20
"""More digits than a Unix time will have for ages: anything longer is no URL this signer made."""


class Signer:
    def __init__(self) -> None:
        self._key = secrets.token_bytes(32)

    def query(self, method: str, path: str, lifetime: int = DEFAULT_LIFETIME_SECONDS) -> str:
        """The query string that makes `method path` valid for `lifetime` seconds."""
        expires = int(time.time()) + lifetime
        return urlencode({"expires": expires, "signature": self._signature(method, path, expires)})

    def verify(self, method: str, path: str, expires: str, signature: str) -> bool:
        """Whether the URL's signature is this signer's for the call and has not expired. Only ASCII
        digits and hex are looked at: `int` takes `²` and refuses 5000 digits, and `compare_digest`
        raises on other text (each was a 500)."""
        if not (expires.isascii() and expires.isdigit() and len(expires) <= MAX_EXPIRES_DIGITS and signature.isascii()):
            return False
        if int(expires) < time.time():
            return False
        return hmac.compare_digest(self._signature(method, path, int(expires)), signature)

    def _signature(self, method: str, path: str, expires: int) -> str:
        message = f"{method}\n{path}\n{expires}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()
