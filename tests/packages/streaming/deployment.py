"""Streams each word of its plain input as partial output, then answers the whole text. `leave a
thread` leaves one behind, which streams once a later request says `release it`; `tee` puts a
stdout of its own with a lock in place, and a thread streams while it holds that lock; `flood N
FOLDER` streams N updates of 1 MiB, writing its request's id to FOLDER/id first and a byte to
FOLDER/sent after each update."""

import os
import sys
import threading
import time


class Tee:
    """A stdout that holds its own lock while it writes or flushes, as logging tees do."""

    def __init__(self, stream):
        self.stream, self.lock = stream, threading.Lock()

    def write(self, text):
        with self.lock:
            return self.stream.write(text)

    def flush(self):
        with self.lock:
            self.stream.flush()


class Deployment:
    def __init__(self, base_directory, context):
        self.release = threading.Event()
        self.released = threading.Event()

    def request(self, data, context):
        if data == "leave a thread":
            update = context["streaming_update"]

            def late():
                self.release.wait(30)
                for n in range(3):
                    update(f"late {n}")
                self.released.set()

            threading.Thread(target=late).start()
            return "left"
        if data == "tee":
            sys.stdout = tee = Tee(sys.stdout)
            update = context["streaming_update"]

            def streams_holding_the_lock():
                with tee.lock:
                    time.sleep(0.3)  # the reply is being sent meanwhile
                    update("late")

            threading.Thread(target=streams_holding_the_lock).start()
            time.sleep(0.05)  # the thread has the lock
            return "teed"
        if data.startswith("flood "):
            _, count, folder = data.split(" ", 2)
            with open(os.path.join(folder, "id"), "w") as written:
                written.write(context["id"])
            for n in range(int(count)):
                context["streaming_update"](f"{n} " + "s" * 2 ** 20)
                with open(os.path.join(folder, "sent"), "ab") as sent:
                    sent.write(b".")
            return "flooded"
        if data == "release it":
            self.release.set()
            self.released.wait(30)
            return "released"
        for word in data.split():
            context["streaming_update"](word.upper())
        return data.upper()
