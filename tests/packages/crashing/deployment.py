"""Dies in the ways a real deployment can, on request; `sleep` outlives any timeout."""

import ctypes
import os
import sys
import tempfile
import time


class Deployment:
    def __init__(self, base_directory, context):
        pass

    def request(self, data, context):
        mode = data["mode"]
        if mode == "sys_exit":
            sys.exit(3)
        if mode == "os_exit":
            os._exit(4)
        if mode == "segfault":
            ctypes.string_at(0)
        if mode == "close_channel":  # as a library that closes every file descriptor might, then runs on
            os.closerange(3, 4096)
            time.sleep(60)
        if mode.startswith("sleep"):
            time.sleep(float(mode.removeprefix("sleep ")))
        if mode == "temp":  # a scratch file, as a model leaves one
            handle, path = tempfile.mkstemp()
            os.close(handle)
            return {"pid": os.getpid(), "temp": path}
        return {"pid": os.getpid()}
