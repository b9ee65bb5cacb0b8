"""Prints to stdout while it starts, and to stdout and stderr while it handles a request; raises when
asked to "fail"."""

import sys


class Deployment:
    def __init__(self):
        print("printing: loaded")

    def request(self, data):
        print(f"handling {data!r}")
        print(f"a warning about {data!r}", file=sys.stderr)
        if data == "fail":
            raise ValueError("asked to fail")
        return data.upper()
