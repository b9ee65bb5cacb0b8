"""Streams each word of its plain input as partial output, then answers the whole text."""


class Deployment:
    def __init__(self, base_directory, context):
        pass

    def request(self, data, context):
        for word in data.split():
            context["streaming_update"](word.upper())
        return data.upper()
