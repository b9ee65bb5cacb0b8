"""`__init__` never returns while the file `$HANG_FOLDER/hang` exists (a model waiting on a lock, a
download with no timeout); each start first leaves its process id in `$HANG_FOLDER`. A request
`"crash"` makes that file and ends the process, so the instance's restart hangs."""

import os
import time
from pathlib import Path


class Deployment:
    def __init__(self, base_directory, context):
        folder = Path(os.environ["HANG_FOLDER"])
        (folder / f"started-{os.getpid()}").touch()
        while (folder / "hang").exists():
            time.sleep(0.05)

    def request(self, data):
        if data == "crash":
            (Path(os.environ["HANG_FOLDER"]) / "hang").touch()
            os._exit(5)
        return data
