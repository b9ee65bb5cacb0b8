"""Starts a model server on `$CHILD_PORT` in `__init__` that leaves the worker's process group, as such servers
often do: `$CHILD_DETACH` says how (`session`: `start_new_session=True`; `group`: `os.setpgrp`; `daemon`: a
daemon's double fork, in a session of its own); `__init__` fails if the port is taken. A request answers the
worker's and the server's process ids as JSON text, or, asked so: `crash` ends the worker (exit code 3), `hang`
sleeps for ever, and `gil FILE` holds the GIL for ever in a C call (`system`, through `ctypes.PyDLL`) that first
makes FILE."""

import ctypes
import json
import os
import shlex
import subprocess
import sys
import time

SERVER = """
import http.server, os, sys
if sys.argv[2] == "daemon" and os.fork():
    os._exit(0)
server = http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), http.server.SimpleHTTPRequestHandler)
print(os.getpid(), flush=True)
server.serve_forever()
"""
DETACH = {"session": {"start_new_session": True}, "group": {"preexec_fn": os.setpgrp},
          "daemon": {"start_new_session": True}}


class Deployment:
    def __init__(self, base_directory, context):
        detach = os.environ["CHILD_DETACH"]
        started = subprocess.Popen([sys.executable, "-c", SERVER, os.environ["CHILD_PORT"], detach],
                                   stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, **DETACH[detach])
        listening = started.stdout.readline()  # empty once the server has exited
        if not listening:
            raise RuntimeError("model server exited (port taken?)")
        self.server = int(listening)

    def request(self, data):
        if data == "crash":
            os._exit(3)
        if data == "hang":
            time.sleep(3600)
        if data.startswith("gil "):
            ctypes.PyDLL(None).system(f"touch {shlex.quote(data[4:])}; exec sleep 3600".encode())
        return json.dumps({"worker": os.getpid(), "server": self.server})
