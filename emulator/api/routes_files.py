"""Buckets and their files, as `ubiops.utils.upload_file` / `download_file` and the `files_*` calls
use them: the API hands out signed URLs, and the bytes travel over `routes_storage`."""

from __future__ import annotations

import asyncio
from urllib.parse import unquote

from fastapi import APIRouter, Depends, Path, Query, Request, Response

from emulator.api.dependencies import Services, get_services
from emulator.api.errors import ApiError
from emulator.api.labels import parse_label_filter
from emulator.api.paths import rest_of_path
from emulator.api.routes_storage import signed_url
from emulator.api.sdk_models.files import (
    BucketCreate,
    BucketDetail,
    BucketList,
    BucketUpdate,
    FileDetail,
    FileItem,
    FileUploadResponse,
    bucket_detail,
    bucket_list,
    file_item,
)

router = APIRouter()
BUCKETS = "/projects/{project_name}/buckets"
BUCKET = BUCKETS + "/{bucket_name}"
FILES = BUCKET + "/files"
MULTIPART_CALLS = ("start-multipart-upload", "complete-multipart-upload")
"""`files_start_multipart_upload` and `files_complete_multipart_upload`, which are not served."""
MULTIPART_PART_PARAMETERS = ("upload_id", "part_number")
"""The query of `files_upload` for one part of a multipart upload (`ubiops.utils.upload_file` sends both,
or `upload_id` alone for Azure's blocks): a part of an upload that was never started."""
MULTIPART_REFUSAL = "Multipart uploads (files of 4 GB and more) are not served by the emulator"
LIMIT = Query(50, ge=1, le=1000, description="Files and prefixes on a page; 50 unless given, as UbiOps")
"""UbiOps' default page (the SDK documents it): past it, a caller that ignores `continuation_token` misses
files there, so it does here too (the default was 1000, the most a page takes)."""
FILE_PARAMETER = Path(description="The file name, `/` sent as `%2F` (the name is read from the raw path, see _file_in_path)")


@router.get(BUCKETS, response_model=list[BucketList])
async def buckets_list(
    project_name: str,
    labels: str | None = Query(None, description="key:value pairs, comma-separated"),
    services: Services = Depends(get_services),
) -> list[BucketList]:
    services.registry.project(project_name)
    return [bucket_list(project_name, b) for b in services.storage.list_buckets(parse_label_filter(labels))]


@router.post(BUCKETS, response_model=BucketList, status_code=201)
async def buckets_create(project_name: str, body: BucketCreate, services: Services = Depends(get_services)) -> BucketList:
    services.registry.project(project_name)
    created = await asyncio.to_thread(services.storage.create_bucket, body.name, body.description or "", body.labels)
    return bucket_list(project_name, created)


@router.get(BUCKET, response_model=BucketDetail)
async def buckets_get(project_name: str, bucket_name: str, services: Services = Depends(get_services)) -> BucketDetail:
    services.registry.project(project_name)
    return bucket_detail(project_name, services.storage.bucket(bucket_name))


@router.patch(BUCKET, response_model=BucketDetail)
async def buckets_update(project_name: str, bucket_name: str, body: BucketUpdate,
                         services: Services = Depends(get_services)) -> BucketDetail:
    services.registry.project(project_name)
    return bucket_detail(project_name, services.storage.update_bucket(bucket_name, body.description, body.labels))


@router.delete(BUCKET, status_code=204)
async def buckets_delete(project_name: str, bucket_name: str, services: Services = Depends(get_services)) -> Response:
    """The bucket and every file in it (the `default` bucket stays: it holds the requests' files)."""
    services.registry.project(project_name)
    await asyncio.to_thread(services.storage.delete_bucket, bucket_name)
    return Response(status_code=204)


@router.get(FILES, response_model=FileDetail)
async def files_list(
    project_name: str,
    bucket_name: str,
    prefix: str = "",
    delimiter: str = "",
    continuation_token: str = "",
    limit: int = LIMIT,
    services: Services = Depends(get_services),
) -> FileDetail:
    services.registry.project(project_name)
    files, prefixes, token = await asyncio.to_thread(
        services.storage.list, bucket_name, prefix, delimiter, continuation_token, limit=limit)
    return FileDetail(files=[file_item(f) for f in files], prefixes=prefixes, continuation_token=token)


@router.post(FILES + "/" + rest_of_path("file"), response_model=FileUploadResponse)
async def files_upload(request: Request, project_name: str, bucket_name: str, file: str = FILE_PARAMETER,
                       services: Services = Depends(get_services)) -> FileUploadResponse:
    """A URL to PUT the file's bytes to, without a token, as UbiOps' signed upload URLs. A part of a
    multipart upload is refused as starting one is: its URL would have overwritten the file with one part."""
    services.registry.project(project_name)
    name, _ = _file_in_path(request)
    if any(parameter in request.query_params for parameter in MULTIPART_PART_PARAMETERS):
        raise ApiError(404, MULTIPART_REFUSAL)
    services.storage.target(bucket_name, name)
    return FileUploadResponse(url=signed_url(request, services, "PUT", bucket_name, name))


# For /docs only, registered after the route below, which serves it too: matched first, it took a file
# named `a/download` (sent as `a%2Fdownload`, decoded to `a/download`) and failed its FileItem as a URL.
@router.get(FILES + "/{file}/download", response_model=FileUploadResponse)
@router.get(FILES + "/" + rest_of_path("file"), response_model=FileItem | FileUploadResponse)
async def files_get(request: Request, project_name: str, bucket_name: str, file: str = FILE_PARAMETER,
                    services: Services = Depends(get_services)) -> FileItem | FileUploadResponse:
    """`…/files/{file}` describes a file; `…/files/{file}/download` hands out a URL to GET it from."""
    services.registry.project(project_name)
    name, download = _file_in_path(request)
    stored = services.storage.stat(bucket_name, name)
    if download:
        return FileUploadResponse(url=signed_url(request, services, "GET", bucket_name, name))
    return file_item(stored)


@router.delete(FILES + "/" + rest_of_path("file"), status_code=204)
async def files_delete(request: Request, project_name: str, bucket_name: str, file: str = FILE_PARAMETER,
                       services: Services = Depends(get_services)) -> Response:
    services.registry.project(project_name)
    name, _ = _file_in_path(request)
    await asyncio.to_thread(services.storage.delete, bucket_name, name)
    return Response(status_code=204)


def _file_in_path(request: Request) -> tuple[str, bool]:
    """The file name, read from the raw path: the SDK encodes `/` in names as `%2F`, which the decoded
    path cannot tell from the `/download` suffix. Also whether the call asks for a download."""
    raw = request.scope.get("raw_path", request.url.path.encode()).decode("latin-1").split("?")[0]
    # Where the decoded path's `{file}` starts, as nothing matched before it (project, bucket) holds a `/`;
    # not after a word: a project or bucket may itself be named `buckets` or `files` (a bucket `files`
    # once stored `a.txt` as `files/a.txt`), and `projects` may come escaped (`%70rojects`, once a 500).
    start = len(request.scope["path"].split("/")) - len(request.path_params["file"].split("/"))
    rest = raw.split("/")[start:]
    if len(rest) > 1 and rest[-1] in MULTIPART_CALLS and request.method == "POST":
        raise ApiError(404, MULTIPART_REFUSAL)
    download = len(rest) > 1 and rest[-1] == "download" and request.method == "GET"
    try:  # strictly: decoded with replacement, `%FF` and `%FE` were both `\ufffd`, one file overwriting the other
        name = unquote("/".join(rest[:-1] if download else rest), errors="strict")
    except UnicodeDecodeError:
        raise ApiError(400, "A file name must be UTF-8 once its %-escapes are decoded") from None
    if not name:
        raise ApiError(400, "A file name is needed after /files/")
    return name, download
