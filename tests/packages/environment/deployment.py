"""Answers the environment variables it is asked for, as its instance sees them: in `os.environ`, and
in the init context's `environment_variables` (null for a name it does not have)."""

import os


class Deployment:
    def __init__(self, base_directory, context):
        self.context_variables = context["environment_variables"]

    def request(self, data):
        names = data["names"]
        return {"environ": {name: os.environ.get(name) for name in names},
                "context": {name: self.context_variables.get(name) for name in names}}
