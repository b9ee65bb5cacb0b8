"""Needs 300 MB while it loads (a model converted, its source then dropped), little after: an instance
limit under 300 MB stops it while it starts, as a container's would. With `INIT_PEAK_HOLD` set, it
holds the 300 MB and never returns (a load that runs away)."""

import os
import time


class Deployment:
    def __init__(self, base_directory, context):
        source = b"x" * (300 * 1024 * 1024)
        while os.environ.get("INIT_PEAK_HOLD"):
            time.sleep(0.05)
        self.loaded_mb = len(source) // (1024 * 1024)
        del source

    def request(self, data):
        return f"loaded {self.loaded_mb} MB once"
