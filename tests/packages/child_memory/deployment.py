"""Allocates 200 MB in a process of its own, as a data loader's worker or a tool a deployment runs would. The
request names how: `fork` (a multiprocessing child) or `subprocess` (another Python), each ending once it has
allocated them, or `hold`, another Python that keeps them until it is killed, the request waiting for it. Any
other request is answered at once."""

import multiprocessing
import subprocess
import sys

ALLOCATE = "held = b'x' * (200 * 1024 * 1024)"  # written, so resident (a bytearray's zeros are not)


def allocate() -> None:
    exec(ALLOCATE)


class Deployment:
    def request(self, data):
        if data == "fork":
            child = multiprocessing.get_context("fork").Process(target=allocate)
            child.start()
            child.join()
        elif data == "subprocess":
            subprocess.run([sys.executable, "-c", ALLOCATE], check=True)
        elif data == "hold":
            subprocess.run([sys.executable, "-c", f"{ALLOCATE}\nimport signal\nsignal.pause()"], check=True)
        return f"{data}: done"
