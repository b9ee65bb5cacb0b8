"""Bucket and file bodies, field for field as the `ubiops` 4.15 SDK models them, rendered from
`emulator.storage`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel

from emulator.storage import StoredBucket, StoredFile

PROVIDER = "ubiops"


class BucketList(BaseModel):
    id: str
    name: str
    provider: str = PROVIDER
    project: str
    creation_date: datetime
    configuration: dict[str, Any] = {}
    ttl: int | None = None
    description: str = ""
    labels: dict[str, str] = {}
    last_updated: datetime


class BucketDetail(BucketList):
    size: int | None = None
    size_measurement_date: datetime | None = None


class FileItem(BaseModel):
    file: str
    size: int
    time_created: datetime


class FileDetail(BaseModel):
    continuation_token: str | None = None
    files: list[FileItem]
    prefixes: list[str]


class FileUploadResponse(BaseModel):
    url: str
    provider: str = PROVIDER


def bucket_list(project: str, bucket: StoredBucket) -> BucketList:
    return BucketList(id=bucket.name, name=bucket.name, project=project, creation_date=bucket.created,
                      last_updated=bucket.created)


def file_item(stored: StoredFile) -> FileItem:
    return FileItem(file=stored.name, size=stored.size, time_created=stored.time_created)
