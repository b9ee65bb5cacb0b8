"""Streams each word of its plain input as partial output, then answers the whole text. `leave a
thread` leaves one behind, which streams once a later request says `release it`."""

import threading


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
        if data == "release it":
            self.release.set()
            self.released.wait(30)
            return "released"
        for word in data.split():
            context["streaming_update"](word.upper())
        return data.upper()
