"""`GET /user`: the emulator's one user, whose email the official CLI's `ubiops signin` reads."""

from __future__ import annotations

from fastapi import APIRouter

from emulator.api.sdk_models import management

router = APIRouter()


@router.get("/user", response_model=management.User)
async def user_get() -> management.User:
    return management.User()
