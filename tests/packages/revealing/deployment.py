"""Reveals the value of the variable each request names (plain text): prints it on stdout, then fails
with it in a traceback on stderr and in a message meant for the caller. With FAIL_START_WITH set, it
fails to start with that value in its message instead, once the file START_GATE names (if set) exists."""

import os
import time


class Revealed(Exception):
    def __init__(self, message):
        super().__init__(message)
        self.public_error_message = message


class Deployment:
    def __init__(self, base_directory, context):
        while "START_GATE" in os.environ and not os.path.exists(os.environ["START_GATE"]):
            time.sleep(0.05)
        if "FAIL_START_WITH" in os.environ:
            raise RuntimeError(f"cannot start with {os.environ['FAIL_START_WITH']}")

    def request(self, data):
        value = os.environ[data]
        print(f"the value of {data} is {value}")
        raise Revealed(f"boom with {value}")
