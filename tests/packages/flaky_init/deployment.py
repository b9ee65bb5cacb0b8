"""`__init__` raises while the file `$FLAG_FOLDER/fail` exists (a model server not up yet, a licence
check that times out): a transient failure. A request `"crash"` makes that file and ends the process,
so the instance's restart fails until the file is removed; any other request answers the process id."""

import os
from pathlib import Path


class Deployment:
    def __init__(self, base_directory, context):
        if (Path(os.environ["FLAG_FOLDER"]) / "fail").exists():
            raise RuntimeError("a transient init failure")

    def request(self, data):
        if data == "crash":
            (Path(os.environ["FLAG_FOLDER"]) / "fail").touch()
            os._exit(5)
        return str(os.getpid())
