"""Uses sys.stdout and sys.stderr as programs use a normal Python stream: `reconfigure` and `buffer`
while it starts, and leaves a line open on stderr; while it handles a request, whatever `data` names: "buffer", "wrapped" (a text
wrapper of its own around `sys.stdout.buffer`), "attributes", "progress" (a progress bar's last
line, left open) or "long N" (one line of N characters "é", 2 bytes each in UTF-8)."""

import io
import sys


class Deployment:
    def __init__(self):
        sys.stdout.reconfigure(line_buffering=True)
        sys.stderr.reconfigure(errors="backslashreplace")
        sys.stdout.buffer.write(b"console: loaded\n")
        sys.stdout.buffer.flush()
        sys.stderr.write("console: starting")  # and leaves the line open

    def request(self, data):
        if data == "buffer":
            sys.stdout.buffer.write(b"bytes ")
            print("then text")
            sys.stdout.buffer.write(b"one\ntwo\n")
        elif data == "wrapped":
            wrapper = io.TextIOWrapper(sys.stdout.buffer, encoding="utf-8", line_buffering=True)
            print("wrapped", file=wrapper)
            del wrapper  # closes sys.stdout.buffer, as a collected wrapper does
            print("after the wrapper")
        elif data == "attributes":
            stream = sys.stdout
            print(stream.line_buffering, stream.errors == sys.__stdout__.errors, stream.isatty(), stream.writable(), stream.name,
                  isinstance(stream.buffer, io.BufferedIOBase), sys.stderr.errors)
        elif data == "progress":
            sys.stderr.write("\r 100%|###| 10/10 done")
            sys.stderr.flush()
        elif data.startswith("long "):
            print("é" * int(data.split()[1]))
        return data
