"""Dies in the ways a real deployment can, on request; `sleep` outlives any timeout. With
`$CRASH_AT_INIT` set to a mode, `__init__` dies so instead; with `$CRASH_AFTER_INIT` set to a number of
seconds, a thread `__init__` starts ends the process that long after (exit code 7), request or none."""

import ctypes
import multiprocessing
import os
import sys
import tempfile
import threading
import time


class Deployment:
    def __init__(self, base_directory, context):
        if "CRASH_AT_INIT" in os.environ:
            self.request({"mode": os.environ["CRASH_AT_INIT"]}, context)
        if "CRASH_AFTER_INIT" in os.environ:
            threading.Timer(float(os.environ["CRASH_AFTER_INIT"]), os._exit, (7,)).start()

    def request(self, data, context):
        mode = data["mode"]
        if mode == "fork_exit":  # a child (a data loader's worker, say) outlives the process, holding its files open
            multiprocessing.get_context("fork").Process(target=time.sleep, args=(600,), daemon=False).start()
            os._exit(9)
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
