"""The oldest signatures UbiOps accepts: `__init__(self)` and `request(self, data)`."""


class Deployment:
    def __init__(self):
        self.calls = 0

    def request(self, data):
        self.calls += 1
        return f"{data} #{self.calls}"
