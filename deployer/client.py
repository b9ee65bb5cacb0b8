"""The `ubiops` SDK client, configured from the environment, and every call's failure as one line.

The token comes from `UBIOPS_API_TOKEN` only; it is handed to the SDK and never printed, logged or
written anywhere. With `dry_run`, calls that change something are printed instead of made, a secret
environment variable's value masked. An error never shows the token, nor the value of a secret
variable any call has sent: a server's error may quote the request it refused.
"""

from __future__ import annotations

import math
import os
import re
import time
from collections.abc import Callable, Collection, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
import ubiops
import urllib3
from ubiops.utils.file_operations import MULTIPART_MIN_SIZE

from contract.files import DEFAULT_BUCKET, file_uri
from contract.secrets import MASK, masked
from deployer.errors import ApiError, DeployerError

UBIOPS_TOKEN_VARIABLE = "UBIOPS_API_TOKEN"
HOST_VARIABLE = "UBIOPS_API_HOST"
TOKEN_SHAPE = re.compile(r"(Token )?[!-~]+")
"""A token as UbiOps shows it: printable ASCII, no space but after `Token`. Anything else is refused
before use: the HTTP library's error for a header holding a line break quotes the header, token and all."""
REQUEST_TIMEOUT_SECONDS = (10, 120)
"""(connect, read) for every call: the SDK sets none, so a host that took the connection and never
answered held `push`, `status` and `request` forever. Reads may take 2 minutes."""
UPLOAD_READ_SECONDS = 120.0
UPLOAD_READ_SECONDS_PER_GB = 600.0
"""The wait for the answer to a revision's upload: UbiOps answers once the zip is stored, which takes
longer the larger it is (`upload_timeout`). A large zip's answer came after the 2 minutes every other
call waits, and the push stopped with a version it said had no package, though the package had arrived."""
RATE_LIMIT_RETRIES = 3
"""How often a call UbiOps refused as rate-limited (429) is made again before the command stops. The
SDK's own retry had no end, so a limit that did not lift held `push` forever."""
MAX_RATE_LIMIT_WAIT = 60.0
"""The longest wait before a retry, in seconds; a 429 asking for more stops the command at once."""
SDK_RATE_LIMIT_WAIT = 60.0
"""The SDK's wait when a 429 says nothing of when to call again."""
UPLOAD_HEADERS = {"Content-Disposition": "multipart/form-data"}
AZURE_PROVIDER = "azure_blob_storage"
AZURE_UPLOAD_HEADERS = {**UPLOAD_HEADERS, "x-ms-version": "2020-04-08", "x-ms-blob-type": "BlockBlob"}
"""The headers `ubiops.utils.upload_file` PUTs a file with, to an Azure bucket and to any other."""

DEFAULT_HOST = "https://api.ubiops.com/v2"
"""The SDK's own default host (`ubiops.Configuration`), for `UBIOPS_API_HOST` unset or empty."""


class Api:
    """The SDK's CoreApi behind one door: failures become DeployerError, writes honour dry runs. It is
    UbiOps' API, configured from the environment, unless `core` is another's (the emulator's, in `check`)."""

    def __init__(self, dry_run: bool = False, say: Callable[[str], None] = print, core: ubiops.CoreApi | None = None,
                 secrets: Iterable[str] = ()) -> None:
        if core is None:
            token = os.environ.get(UBIOPS_TOKEN_VARIABLE, "").strip()
            if not token:
                raise DeployerError(f"{UBIOPS_TOKEN_VARIABLE} is not set: export the API token of a service user of the project")
            if not TOKEN_SHAPE.fullmatch(token):
                raise DeployerError(f"{UBIOPS_TOKEN_VARIABLE} holds spaces, line breaks or other characters a token has not: "
                                    "export it as UbiOps shows it ('Token <key>')")
            host = os.environ.get(HOST_VARIABLE, "").strip() or DEFAULT_HOST  # set empty (CI's unset variable): unset
            configuration = ubiops.Configuration(host=host, api_key={"Authorization": token})
            configuration.auto_retry_rate_limiting = False  # retried here instead, a bounded number of times
            core = ubiops.CoreApi(ubiops.ApiClient(configuration))
        self.core = core
        self.client = core.api_client
        self.host = self.client.configuration.host
        self.dry_run = dry_run
        self._say = say
        self._secrets: set[str] = set(filter(None, secrets))
        """The secret variables' values known (`secrets`) or sent so far, masked in every error as the token is."""

    def shown(self, text: str) -> str:
        """UbiOps' own text (a build's or a request's error) as it may be shown: without the token or a
        secret's value, which a deployment's failure may quote (UbiOps is not known to mask them)."""
        return scrubbed(text, self._secrets)

    def read(self, what: str, method: str, *args: Any, **kwargs: Any) -> Any:
        """Make a call that changes nothing; `what` names its object in an error ("project 'x'")."""
        if self.dry_run:
            self._say(f"call   {_signature(method, args, kwargs)}")
        return self._call(what, method, args, kwargs)

    def write(self, what: str, method: str, *args: Any, **kwargs: Any) -> Any:
        """Make a call that changes something, or only print it in a dry run (returning None)."""
        if self.dry_run:
            self._say(f"would  {_signature(method, args, kwargs)}")
            return None
        return self._call(what, method, args, kwargs)

    def _call(self, what: str, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """Make the call; one UbiOps refuses as rate-limited (429, so not done) is made again after the
        wait it asks for, up to RATE_LIMIT_RETRIES times, and the command stops once that is spent or
        the wait asked for is longer than MAX_RATE_LIMIT_WAIT. Each call waits REQUEST_TIMEOUT_SECONDS
        unless `kwargs` give the SDK's `_request_timeout` (an upload's, `upload_timeout`)."""
        self._secrets.update(filter(None, map(_secret_value, (*args, *kwargs.values()))))
        retries = 0
        while True:
            with translated(what, self.host, self._secrets):
                try:
                    return getattr(self.core, method)(*args, **{"_request_timeout": REQUEST_TIMEOUT_SECONDS, **kwargs})
                except ubiops.exceptions.ApiException as exc:
                    if exc.status != 429:
                        raise
                    wait = _rate_limit_wait(exc.headers)
            if wait > MAX_RATE_LIMIT_WAIT:
                raise ApiError(f"429: UbiOps refused {what} as rate-limited and asks to wait {wait:.0f} s; try again later", 429)
            if retries == RATE_LIMIT_RETRIES:
                raise ApiError(f"429: UbiOps still refused {what} as rate-limited after {retries} retries; try again later", 429)
            retries += 1
            self._say(f"  rate-limited (429): {method} again in {wait:.0f} s (retry {retries} of {RATE_LIMIT_RETRIES})")
            time.sleep(wait)

    def upload_file(self, project: str, path: Path, name: str) -> str:
        """Upload the local file `path` to the project's default bucket as `name`; its `ubiops-file://` URI.

        The steps of `ubiops.utils.upload_file` (a signed URL from the API, then the bytes PUT to it with
        the headers its storage wants), each bounded like every other call: that function sets no
        timeout on either, so a host that never answered held `request --file` and the sample requests
        forever. Its multipart upload of files from 4 GB on is left out: such a file is refused.
        """
        size = path.stat().st_size
        if size >= MULTIPART_MIN_SIZE:
            raise DeployerError(f"{path.name} is {size / 1024**3:.1f} GB; the deployer uploads files under "
                                f"{MULTIPART_MIN_SIZE // 1024**3} GB: upload it with `ubiops files upload` and give its "
                                "ubiops-file:// URI instead")
        target = self.write(f"the upload of {path.name}", "files_upload", project, DEFAULT_BUCKET, name)
        if target is not None:  # None: a dry run, which uploads nothing
            _put(target.url, path, AZURE_UPLOAD_HEADERS if target.provider == AZURE_PROVIDER else UPLOAD_HEADERS,
                 self.client.rest_client)
        return file_uri(DEFAULT_BUCKET, name)

    def close(self) -> None:
        self.client.close()


@contextmanager
def translated(what: str, host: str, secrets: Collection[str] = ()) -> Iterator[None]:
    """Turn the SDK's and the network's exceptions into one clear DeployerError line, without the token
    or the `secrets` (values) whatever the exception quoted."""
    try:
        yield
    except ubiops.exceptions.ApiException as exc:
        if isinstance(exc.__context__, requests.exceptions.InvalidJSONError):  # NaN or infinity: nothing was sent
            raise DeployerError(f"the data for {what} is not valid JSON: {_one_line(exc.__context__)}") from None
        if isinstance(exc.__context__, requests.exceptions.ReadTimeout):  # connected and sent: the answer is late
            raise DeployerError(scrubbed(f"the UbiOps API at {host} did not answer {what} in time "
                                         f"({_one_line(exc.reason)}); it may still have done it", secrets)) from None
        if not exc.status:  # the SDK's wrapping of a connection that failed or its connecting timed out
            raise DeployerError(scrubbed(f"cannot reach the UbiOps API at {host} ({_one_line(exc.reason)})", secrets)) from None
        raise ApiError(scrubbed(describe_api_error(exc, what), secrets), exc.status) from None
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise DeployerError(scrubbed(f"cannot reach the UbiOps API at {host} ({_one_line(reason)})", secrets)) from None
    except ValueError as exc:
        raise DeployerError(scrubbed(f"unexpected answer from {host} for {what}: {_one_line(exc)}", secrets)) from None


def upload_timeout(size: int) -> tuple[float, float]:
    """(connect, read) for the upload of a zip of `size` bytes (`UPLOAD_READ_SECONDS`)."""
    return REQUEST_TIMEOUT_SECONDS[0], UPLOAD_READ_SECONDS + UPLOAD_READ_SECONDS_PER_GB * size / 1024**3


def _rate_limit_wait(headers: Any) -> float:
    """The seconds a 429 asks to wait: HTTP's `Retry-After`, else the `x-ratelimit-reset` the SDK reads
    (plus the second it adds, as UbiOps may round down), else the SDK's default."""
    for header, margin in (("Retry-After", 0), ("x-ratelimit-reset", 1)):
        seconds = _header_seconds((headers or {}).get(header, ""))
        if seconds is not None:
            return max(seconds, 0.0) + margin
    return SDK_RATE_LIMIT_WAIT


def _header_seconds(value: str) -> float | None:
    """A wait header's seconds: a number, or an HTTP date as the seconds from now (RFC 9110 allows one
    in `Retry-After`: it was taken for no answer, so the SDK's minute); None when absent or neither."""
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except ValueError:
            return None
        if when.tzinfo is None:  # "-0000": UTC, as RFC 5322 means it
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    return seconds if math.isfinite(seconds) else None


def _put(url: str, path: Path, headers: dict[str, str], rest: Any) -> None:
    """PUT the file's bytes to a signed URL with the SDK's TLS settings (`rest`, its REST client); a
    failure names the storage's host only, as the URL's query is a credential."""
    parts = urlsplit(url)
    storage = f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"
    try:
        with path.open("rb") as stream:
            answer = requests.put(url, data=stream, headers=headers, timeout=REQUEST_TIMEOUT_SECONDS,
                                  verify=rest.verify, cert=rest.cert)
    except requests.RequestException as exc:
        reason = "timed out" if isinstance(exc, requests.Timeout) else type(exc).__name__
        raise DeployerError(f"cannot upload {path.name} to the bucket's storage at {storage} ({reason})") from None
    if not 200 <= answer.status_code <= 299:  # as the SDK: any other answer is a failure
        raise DeployerError(f"{answer.status_code}: the bucket's storage at {storage} refused the upload of {path.name}")


def token_key() -> str:
    """The secret part of the token: `UBIOPS_API_TOKEN` without UbiOps' `Token ` prefix."""
    return os.environ.get(UBIOPS_TOKEN_VARIABLE, "").strip().removeprefix("Token ").strip()


def scrubbed(text: str, secrets: Collection[str] = ()) -> str:
    """`text` with the token's key and each of `secrets` masked in every spelling `contract.secrets`
    knows (as written, JSON-escaped, URL-encoded, Python-escaped, and each line of a multi-line one)."""
    return masked(text, [token_key(), *secrets])


def _one_line(value: object) -> str:
    return " ".join(str(value).split())


def describe_api_error(exc: ubiops.exceptions.ApiException, what: str) -> str:
    status = exc.status
    if status == 401:
        return "401: the token was refused"
    message = _one_line(exc.get_body_message() or exc.reason or "")
    if status == 403:
        return f"403: the token may not do this for {what} ({message})"
    if status == 404:
        return f"404: {what} was not found ({message})"
    return f"{status}: {what}: {message}"


def _signature(method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    shown = [_show(a) for a in args] + [f"{k}={_show(v)}" for k, v in kwargs.items() if not k.startswith("_")]
    return f"{method}({', '.join(shown)})"


def _secret_value(value: Any) -> str | None:
    """The value of a secret environment variable a call sends (`EnvironmentVariableCreate`), else None."""
    shown = value.to_dict() if hasattr(value, "to_dict") else {}
    secret = shown.get("value") if shown.get("secret") is True else None
    return secret if isinstance(secret, str) else None


def _show(value: Any) -> str:
    if hasattr(value, "to_dict"):
        shown = {k: v for k, v in value.to_dict().items() if v is not None}
        if _secret_value(value) is not None:
            shown["value"] = MASK
        return repr(shown)
    return repr(value)
