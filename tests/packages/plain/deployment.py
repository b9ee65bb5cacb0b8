"""Plain in, plain out: no spec files."""


class Deployment:
    def request(self, data):
        return data.upper()
