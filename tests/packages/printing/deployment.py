"""Prints to stdout while it starts (a line too that begins as the console shows a request's line), and to
stdout and stderr while it handles a request; raises when asked to "fail". "steps" prints, logs a warning
(logging's own handler, on stderr) and prints again; "flood N" prints N lines, each hundredth a warning logged
instead; "descriptors" writes to the file descriptors 1 and 2 themselves, and runs a process that prints."""

import logging
import os
import subprocess
import sys

logging.basicConfig()


class Deployment:
    def __init__(self):
        print("printing: loaded")
        print("[request 1234] loading weights")

    def request(self, data):
        if data == "steps":
            print("step 1: loading")
            logging.warning("input looks odd")
            print("step 2: done")
            return data
        if data == "descriptors":
            os.write(1, b"fd out\n")
            os.write(2, b"fd err\n")
            subprocess.run([sys.executable, "-c", "print('[request worker-3] batch done')"], check=True)
            return data
        if data.startswith("flood "):
            for n in range(int(data.split()[1])):
                if n % 100 == 99:
                    logging.warning("line %d", n)
                else:
                    print(f"line {n}")
            return data
        print(f"handling {data!r}")
        print(f"a warning about {data!r}", file=sys.stderr)
        if data == "fail":
            raise ValueError("asked to fail")
        return data.upper()
