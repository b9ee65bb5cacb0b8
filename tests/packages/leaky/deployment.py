"""Leaks 64 MB per request, as a cache that never forgets would."""

import os

HELD = []


class Deployment:
    def request(self, data):
        HELD.append(b"x" * (64 * 1024 * 1024))
        return f"{os.getpid()} holds {len(HELD) * 64} MB"
