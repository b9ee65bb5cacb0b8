"""`GET /user`: the emulator's one user, whose email the official CLI's `ubiops signin` reads."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from emulator.api.dependencies import Services, get_services
from emulator.api.sdk_models import management

router = APIRouter()


@router.get("/user", response_model=management.User)
async def user_get(services: Services = Depends(get_services)) -> management.User:
    """Registered when the first project was made (the data folder's first start)."""
    return management.User(registration_date=min(p.created for p in services.registry.projects.values()))
