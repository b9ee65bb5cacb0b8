"""How the emulator ends, and that nothing it started outlives it: a hangup stops it as SIGTERM does."""

from __future__ import annotations

import signal

from harness import Emulator, start_emulator

from emulator.launcher import wait_until_served

GUARD_SECONDS = 30
"""How long a test waits for a step before failing: a guard against hanging, never reached."""


def test_a_hangup_stops_the_emulator_as_sigterm_does(tmp_path):
    """Closing the terminal that runs `make serve` (SIGHUP) ended the emulator at once: no log line, no
    clean-up (its instances' temporary folders stayed)."""
    emulator = start_emulator("minimal", tmp_path)
    try:
        wait_until_served(emulator)
        emulator.process.send_signal(signal.SIGHUP)
        assert emulator.process.wait(GUARD_SECONDS) == -signal.SIGHUP, "it exits by the signal it was stopped with"
    finally:
        kill(emulator)
    log = emulator.log()
    assert "Shutting down" in log and "Application shutdown complete" in log
    assert emulator.temp_dir is not None and list(emulator.temp_dir.iterdir()) == []


def kill(emulator: Emulator) -> None:
    assert emulator.process is not None
    if emulator.process.poll() is None:
        emulator.process.kill()
        emulator.process.wait()
