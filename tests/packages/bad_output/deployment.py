"""Returns output that breaks its own spec, in the ways users get wrong."""

import os
import resource
import tempfile


class PublicError(Exception):
    def __init__(self, message):
        super().__init__(message)
        self.public_error_message = message


class Deployment:
    def __init__(self, base_directory, context):
        pass

    def request(self, data):
        mode = data["mode"]
        if mode == "not_a_dict":
            return [1, 2, 3]
        if mode == "missing_field":
            return {"value": 1.5}
        if mode == "wrong_type":
            return {"value": "high", "picture": None}
        if mode == "not_json":
            return {"value": object(), "picture": None}
        if mode == "nan":
            return {"value": float("nan"), "picture": None}
        if mode == "huge_int":  # past a double's range
            return {"value": 10**400, "picture": None}
        if mode == "lone_surrogate":
            return {"value": None, "picture": "half of a pair: \ud800"}
        if mode == "error_naming_an_undecodable_file":
            name = b"photo-\xff.jpg".decode("utf-8", "surrogateescape")  # as os.listdir gives it
            raise PublicError(f"no such file: {name}")
        if mode == "file_python_could_not_decode":
            path = os.path.join(tempfile.mkdtemp(), os.fsdecode(b"out-\xff.png"))
            with open(path, "wb") as file:
                file.write(b"not kept")
            return {"value": None, "picture": path}
        if mode == "file_past_a_full_disk":  # files may grow to 4 KB from now on in this process, as on a full disk
            path = os.path.join(tempfile.mkdtemp(), "big.png")
            with open(path, "wb") as file:
                file.write(b"x" * 65536)
            resource.setrlimit(resource.RLIMIT_FSIZE, (4096, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
            return {"value": None, "picture": path}
        if mode in ("file_beside_a_wrong_type", "file_beside_not_json"):  # a file copied to be kept, then a failure
            path = os.path.join(tempfile.mkdtemp(), "kept-for-nothing.png")
            with open(path, "wb") as file:
                file.write(b"not kept")
            return {"value": "high" if mode == "file_beside_a_wrong_type" else object(), "picture": path}
        if mode == "file_named_with_a_newline":  # no spec broken: kept as `two_lines.png`
            path = os.path.join(tempfile.mkdtemp(), "two\nlines.png")
            with open(path, "wb") as file:
                file.write(b"kept")
            return {"value": None, "picture": path}
        if mode == "file_named_with_a_backslash":  # no spec broken: kept as `a_b.png`
            path = os.path.join(tempfile.mkdtemp(), "a\\b.png")
            with open(path, "wb") as file:
                file.write(b"kept")
            return {"value": None, "picture": path}
        if mode == "missing_file":
            return {"value": 1.0, "picture": "no-such-file.png"}
        return {"value": None, "picture": None}
