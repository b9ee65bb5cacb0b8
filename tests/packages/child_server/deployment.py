"""Starts a process of its own in `__init__`, as a deployment may start a model server: an HTTP server on
`$CHILD_PORT`; and leaves a file in its temporary folder. A request answers both, as JSON text."""

import json
import os
import subprocess
import sys
import tempfile


class Deployment:
    def __init__(self, base_directory, context):
        self.child = subprocess.Popen([sys.executable, "-m", "http.server", os.environ["CHILD_PORT"], "--bind", "127.0.0.1"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        handle, self.scratch = tempfile.mkstemp()
        os.close(handle)

    def request(self, data):
        return json.dumps({"worker": os.getpid(), "child": self.child.pid, "scratch": self.scratch})
