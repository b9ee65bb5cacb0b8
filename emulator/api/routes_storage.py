"""Signed file URLs: what UbiOps' storage provider serves, here served by the emulator itself.

Outside the `/v2` API and its token, as signed URLs are on UbiOps: the signature is the permission,
for one method on one file, until it expires.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import AsyncIterator
from mimetypes import guess_type
from pathlib import PurePosixPath
from typing import BinaryIO, cast
from urllib.parse import quote

from fastapi import APIRouter, Depends, Query, Request, UploadFile
from fastapi.responses import JSONResponse, StreamingResponse

from contract.files import split_file_uri
from emulator.api.dependencies import Services, get_services
from emulator.api.errors import ApiError
from emulator.api.paths import rest_of_path

PREFIX = "/storage"
SPOOL_BYTES = 8 * 1024 * 1024
CHUNK_BYTES = 1024 * 1024
"""A download is read in chunks of this size, each in a thread (a FileResponse read 64 kB a thread hop)."""
router = APIRouter(prefix=PREFIX)


def signed_url(request: Request, services: Services, method: str, bucket: str, name: str) -> str:
    """A URL any HTTP client can use for `method` on one bucket file, without a token, for an hour."""
    query = services.signer.query(method, f"{bucket}/{name}")
    return f"{str(request.base_url).rstrip('/')}{PREFIX}/{quote(bucket)}/{quote(name)}?{query}"


def download_url(request: Request, services: Services, uri: str) -> str:
    """A signed GET URL for a stored file, named by its URI."""
    return signed_url(request, services, "GET", *split_file_uri(uri))


@router.get("/{bucket}/" + rest_of_path("name"), response_class=StreamingResponse)
async def storage_download(
    bucket: str, name: str, expires: str = Query(""), signature: str = Query(""), services: Services = Depends(get_services)
) -> StreamingResponse:
    """The file's bytes, read from the file opened here: deleted before they are all sent, it still
    arrives whole. Not a FileResponse, which opens it again by name (then a 500 and a dropped connection)."""
    _verify(services, "GET", bucket, name, expires, signature)
    return _file_response(services.storage.open(bucket, name), PurePosixPath(name).name)


def _file_response(file: BinaryIO, filename: str) -> StreamingResponse:
    async def chunks() -> AsyncIterator[bytes]:
        with file:
            while chunk := await asyncio.to_thread(file.read, CHUNK_BYTES):
                yield chunk

    return StreamingResponse(chunks(), media_type=guess_type(filename)[0] or "application/octet-stream", headers={
        "content-length": str(os.fstat(file.fileno()).st_size), "content-disposition": attachment(filename)})


def attachment(filename: str) -> str:
    """A `Content-Disposition` naming a download's file: what the SDK's `getfilename` reads, and the
    CLI saves it as in a folder (`-o DIR`)."""
    quoted = quote(filename)
    return f'attachment; filename="{filename}"' if quoted == filename else f"attachment; filename*=utf-8''{quoted}"


@router.put("/{bucket}/" + rest_of_path("name"))
async def storage_upload(
    request: Request, bucket: str, name: str, expires: str = Query(""), signature: str = Query(""),
    services: Services = Depends(get_services),
) -> JSONResponse:
    """The raw bytes of a file, as `ubiops.utils.upload_file` PUTs them (any 2xx is success); once the
    body is past `SPOOL_BYTES`, every write to disk runs in a thread."""
    _verify(services, "PUT", bucket, name, expires, signature)
    with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as spooled:
        spool = cast(BinaryIO, spooled)  # a binary file in all but typeshed's name
        body = UploadFile(spool)
        async for chunk in request.stream():
            await body.write(chunk)
        await body.seek(0)
        stored = await asyncio.to_thread(services.storage.write, bucket, name, spool)
    return JSONResponse({"file": stored.name, "size": stored.size}, status_code=201)


def _verify(services: Services, method: str, bucket: str, name: str, expires: str, signature: str) -> None:
    if not services.signer.verify(method, f"{bucket}/{name}", expires, signature):
        raise ApiError(403, "The signed URL is invalid or has expired")
