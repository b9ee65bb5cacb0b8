"""The HTTP layer: UbiOps' REST contract on top of `emulator.state` and `emulator.request_runner`.

- `errors`: UbiOps' error shape, `{"error": "..."}`, for every failure.
- `auth`: the optional token.
- `schemas`, `request_schemas`: the response bodies the `ubiops` SDK expects, built from state.
- `request_body`: JSON, text and multipart request bodies turned into request data.
- `routes_*`: one module per group of endpoints.
"""
