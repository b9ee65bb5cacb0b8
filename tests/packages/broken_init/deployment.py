"""Cannot start: its model file is missing."""


class Deployment:
    def __init__(self, base_directory, context):
        raise FileNotFoundError("model1.pkl is missing from the package")

    def request(self, data):
        return data
