"""Errors whose message is safe and useful to show to the person calling the deployment."""


class PublicError(Exception):
    """A failure caused by the request itself; UbiOps shows `public_error_message` to the user."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.public_error_message = message
