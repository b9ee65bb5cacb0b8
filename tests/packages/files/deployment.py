"""Takes a list of files and a single file, returns copies of each and their sizes."""

import os
import shutil
import tempfile


class Deployment:
    def __init__(self, base_directory, context):
        self.scratch = tempfile.mkdtemp(prefix="files-")

    def request(self, data, context):
        copies = []
        for n, path in enumerate(data["images"]):
            copy = os.path.join(self.scratch, f"copy-{n}-{os.path.basename(path)}")
            shutil.copyfile(path, copy)
            copies.append(copy)
        return {
            "copies": copies,
            "sizes": [os.path.getsize(p) for p in data["images"]] + [os.path.getsize(data["note"])],
            "names": [os.path.basename(p) for p in data["images"]],
        }
