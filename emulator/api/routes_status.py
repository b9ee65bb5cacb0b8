"""`GET /status`: the SDK's and CLI's liveness check."""

from fastapi import APIRouter

from emulator.api.sdk_models.management import Status

router = APIRouter()


@router.get("/status", response_model=Status)
async def status() -> Status:
    return Status(status="ok")
