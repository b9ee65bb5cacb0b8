"""Bucket and file bodies, field for field as the `ubiops` 4.15 SDK models them, rendered from
`emulator.storage`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, field_validator

from emulator.api.sdk_models.management import Body, Description
from emulator.storage import StoredBucket, StoredFile
from emulator.version_settings import Labels

PROVIDER = "ubiops"


class BucketUpdate(Body):
    """What a bucket's owner may change. Its files stay until deleted: a TTL is not served."""

    credentials: dict[str, str] | None = None
    configuration: dict[str, str] | None = None
    ttl: int | None = None
    description: str | None = Description
    labels: Labels | None = None

    @field_validator("ttl")
    @classmethod
    def _no_ttl(cls, ttl: int | None) -> None:
        if ttl is not None:
            raise ValueError("bucket TTLs are not served by the emulator: its files stay until deleted")


class BucketCreate(BucketUpdate):
    """A new bucket: a folder of the emulator's (provider `ubiops`); another provider's is not served."""

    name: str
    provider: str | None = None

    @field_validator("provider")
    @classmethod
    def _ubiops_only(cls, provider: str | None) -> str | None:
        if provider not in (None, PROVIDER):
            raise ValueError(f"buckets of provider {provider!r} are not served by the emulator: its buckets are "
                             f"local folders (provider {PROVIDER!r})")
        return provider


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
    return BucketList(id=bucket.id, name=bucket.name, project=project, creation_date=bucket.created,
                      last_updated=bucket.updated or bucket.created, description=bucket.description,
                      labels=bucket.labels)


def bucket_detail(project: str, bucket: StoredBucket) -> BucketDetail:
    return BucketDetail(**bucket_list(project, bucket).model_dump())


def file_item(stored: StoredFile) -> FileItem:
    return FileItem(file=stored.name, size=stored.size, time_created=stored.time_created)
