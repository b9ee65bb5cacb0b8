"""Echoes every type of field back, and reports what UbiOps' loader gave it."""

import os
import shutil
import sys
import tempfile

from echo_helpers import describe


class Deployment:
    def __init__(self, base_directory, context):
        self.base_directory = base_directory
        self.init_context = context
        self.cwd_at_init = os.getcwd()
        self.scratch = tempfile.mkdtemp(prefix="echo-")
        print(f"echo ready in {base_directory}")

    def request(self, data, context):
        print(f"echo handling {sorted(data)}")
        copy = os.path.join(self.scratch, "copy.bin")
        shutil.copyfile(data["file_in"], copy)
        return {
            "int_out": data["int_in"],
            "double_out": data["double_in"],
            "string_out": data["string_in"],
            "bool_out": data["bool_in"],
            "dict_out": {
                "received_keys": sorted(data),
                "file_in_path": data["file_in"],
                "file_in_size": os.path.getsize(data["file_in"]),
                "init_context": self.init_context,
                "request_context": {k: v for k, v in context.items() if not callable(v)},
                "request_context_callables": sorted(k for k, v in context.items() if callable(v)),
                "base_directory": self.base_directory,
                "cwd": self.cwd_at_init,
                "sys_path_tail": sys.path[-2:],
                "env_from_yaml": os.environ.get("FROM_YAML"),
                "env_from_cli": os.environ.get("FROM_CLI"),
                "default_bucket": os.environ.get("SYS_DEFAULT_BUCKET"),
                "helper": describe(data["string_in"]),
                "pid": os.getpid(),
            },
            "array_int_out": data["array_int_in"],
            "array_double_out": data["array_double_in"],
            "array_string_out": data["array_string_in"],
            "file_out": copy,
        }
