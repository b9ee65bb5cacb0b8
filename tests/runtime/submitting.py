"""Submitting jobs to a pool from a test and waiting, with a guard, until they have reached a step."""

from __future__ import annotations

import asyncio
from pathlib import Path

from emulator.runtime.pool import InstancePool
from emulator.runtime.protocol import Job, Reply

PACKAGES = Path(__file__).resolve().parents[1] / "packages"
TIMEOUT = 30
"""Seconds a job may run, and a test waits for a step: a guard against hanging, never reached."""


async def running(pool: InstancePool, job: Job, timeout: float = TIMEOUT) -> asyncio.Task[Reply]:
    """Submit `job` and return once an instance has taken it; the task answers its reply."""
    started = asyncio.Event()
    task = asyncio.create_task(pool.submit(job, timeout, on_start=lambda _: started.set()))
    await asyncio.wait_for(started.wait(), TIMEOUT)
    return task


async def queued(pool: InstancePool, job: Job, timeout: float = TIMEOUT, timed_in_queue: bool = True
                 ) -> asyncio.Task[Reply]:
    """Submit `job` and return once it is in the pool's queue (submit queues before its first wait)."""
    task = asyncio.create_task(pool.submit(job, timeout, timed_in_queue=timed_in_queue))
    await asyncio.sleep(0)
    return task
