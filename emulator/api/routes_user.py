"""`GET /user`: the emulator's one user, whose email the official CLI's `ubiops signin` reads."""

from __future__ import annotations

from fastapi import APIRouter

from emulator.api import schemas

router = APIRouter()


@router.get("/user", response_model=schemas.User)
async def user_get() -> schemas.User:
    return schemas.User()
