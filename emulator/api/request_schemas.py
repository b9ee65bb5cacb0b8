"""Deployment request response bodies, field for field as the `ubiops` 4.15 SDK models them."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class DeploymentRequestCreateResponse(BaseModel):
    id: str
    deployment: str
    version: str
    status: str
    success: bool
    result: Any = None
    error_message: str | None = None
    timeout: int
    emulator_file_urls: dict[str, str] | None = None
