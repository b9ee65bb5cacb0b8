"""Uses sys.stdout and sys.stderr as programs use a normal Python stream: `reconfigure` and `buffer`
while it starts, and leaves a line open on stderr; while it handles a request, whatever `data` names: "buffer", "wrapped" (a text
wrapper of its own around `sys.stdout.buffer`), "attributes", "progress" (a progress bar's last
line, left open), "long N" (one line of N characters "é", 2 bytes each in UTF-8), "replaced" (its
own sys.stdout, closed once written, and sys.stderr None, as the deployment leaves them), "fork" (a child
that prints "forked child PID" and returns from `request` too, carelessly, without `os._exit`, with an error) or
"descriptors" (a line written to the file descriptors 1 and 2 themselves, and one by a process it starts, which
begins as the console shows a request's line), "descriptor flood N" (N short lines written to the file descriptor 1
at once) or "cut N" (a line of N "x" on stdout, its newline written after a line on stderr)."""

import io
import os
import subprocess
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
        elif data == "replaced":
            with open(os.devnull, "w") as own:
                sys.stdout = own
                print("to its own file")
            sys.stderr = None
        elif data == "descriptors":
            os.write(1, b"to file descriptor 1\n")
            os.write(2, b"to file descriptor 2\n")
            subprocess.run([sys.executable, "-c", "print('[request worker-3] from a process it started')"], check=True)
        elif data.startswith("descriptor flood "):
            flood = memoryview(b"".join(b"%06d\n" % n for n in range(int(data.split()[2]))))
            while flood:
                flood = flood[os.write(1, flood):]
        elif data.startswith("cut "):
            sys.stdout.write("x" * int(data.split()[1]))
            sys.stderr.write("between\n")
            sys.stdout.write("\n")
        elif data == "fork" and os.fork() == 0:
            print(f"forked child {os.getpid()}")
            raise RuntimeError("the child's own error")
        return data
