"""`logs_list` (`GET /projects/{p}/logs`, `ubiops logs`): a project's stored log lines that its
`query` selects in the time window of `start` and `end`, at most `limit`. The query language and the
window are `emulator.log_query`'s; the lines are `emulator.log_store`'s."""

from __future__ import annotations

import time

from fastapi import APIRouter, Depends, Query

from emulator.api.dependencies import Services, get_services
from emulator.api.sdk_models.logs import LogList, log_list
from emulator.log_query import Ids, time_window

router = APIRouter()
DEFAULT_LIMIT, MAX_LIMIT = 1000, 5000


@router.get("/projects/{project_name}/logs", response_model=list[LogList])
async def logs_list(
    project_name: str,
    query: str = Query("", description="LogQL line and label filters, e.g. | deployment_request_id=\"…\""),
    start: str | None = Query(None, description="ISO 8601, or a timestamp in seconds or nanoseconds (included)"),
    end: str | None = Query(None, description="ISO 8601, or a timestamp in seconds or nanoseconds (excluded)"),
    limit: int = Query(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT),
    services: Services = Depends(get_services),
) -> list[LogList]:
    project = services.registry.project(project_name)
    window = time_window(start, end, time.time_ns())
    # Compiling 500 regular expressions takes a moment, and a search may wait for lines being stored:
    # both on the searches' own threads, never the pool the other calls share.
    entries = await services.logs.find(project_name, query, window, limit, Ids.of(project))
    return [log_list(entry) for entry in entries]
