"""Raises in every request; with `public` set, with a message meant for the caller."""


class PublicError(Exception):
    def __init__(self, message):
        super().__init__(message)
        self.public_error_message = message


class Deployment:
    def __init__(self, base_directory, context):
        pass

    def request(self, data):
        if data["public"]:
            raise PublicError("The portrait is too dark to profile")
        raise ValueError("internal detail the caller should not see")
