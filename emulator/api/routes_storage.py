"""Signed file URLs: what UbiOps' storage provider serves, here served by the emulator itself.

Outside the `/v2` API and its token, as signed URLs are on UbiOps: the signature is the permission.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse

from emulator.api.errors import ApiError
from emulator.services import Services, get_services
from emulator.storage import StorageError

PREFIX = "/storage"
router = APIRouter(prefix=PREFIX)


def download_url(request: Request, services: Services, path: Path) -> str:
    """A URL any HTTP client can GET the stored file from, without a token, for an hour."""
    bucket, name = services.storage.locate(path)
    query = services.signer.query("GET", f"{bucket}/{name}")
    return f"{str(request.base_url).rstrip('/')}{PREFIX}/{quote(bucket)}/{quote(name)}?{query}"


@router.get("/{bucket}/{name:path}", response_class=FileResponse)
async def storage_download(
    bucket: str,
    name: str,
    expires: str = Query(""),
    signature: str = Query(""),
    services: Services = Depends(get_services),
) -> FileResponse:
    if not services.signer.verify("GET", f"{bucket}/{name}", expires, signature):
        raise ApiError(403, "The signed URL is invalid or has expired")
    try:
        path = services.storage.path(bucket, name)
    except StorageError as exc:
        raise ApiError(400, str(exc)) from None
    if not path.is_file():
        raise ApiError(404, "File not found")
    return FileResponse(path, filename=path.name)
